// Command instanceidvectors prints reference instance IDs computed the way
// upstream FMA computes them: sigs.k8s.io/yaml.Marshal of the ISC's
// modelServerConfig, then "I" + base64url(SHA-256(Y + ";gpus=" + U)) + "i".
//
// Usage (from this folder, offline with a warm module cache; make_cases.py
// writes cases.json, hand-picked cases plus seeded random ones):
//
//	python3 make_cases.py
//	GOFLAGS=-mod=mod GOPROXY=off GOSUMDB=off go run . < cases.json > vectors.json
//
// A case that Go cannot marshal is recorded with its error instead of an ID.
//
// The Python tests compare crds.hashes and crds.go_yaml against vectors.json.
package main

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"os"
	"strings"

	"sigs.k8s.io/yaml"
)

// ModelServerConfig mirrors upstream's Go type (JSON names and omitempty).
type ModelServerConfig struct {
	Port        int32             `json:"port"`
	Options     string            `json:"options,omitempty"`
	EnvVars     map[string]string `json:"env_vars,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

type testCase struct {
	Name   string            `json:"name"`
	Config ModelServerConfig `json:"config"`
	GPUs   []string          `json:"gpus"`
}

type vector struct {
	testCase
	YAML       string `json:"yaml,omitempty"`
	InstanceID string `json:"instance_id,omitempty"`
	Error      string `json:"error,omitempty"`
}

func main() {
	var cases []testCase
	if err := json.NewDecoder(os.Stdin).Decode(&cases); err != nil {
		panic(err)
	}
	out := make([]vector, 0, len(cases))
	for _, c := range cases {
		y, err := yaml.Marshal(c.Config)
		if err != nil {
			out = append(out, vector{testCase: c, Error: err.Error()})
			continue
		}
		sum := sha256.Sum256([]byte(string(y) + ";gpus=" + strings.Join(c.GPUs, ",")))
		id := "I" + base64.RawURLEncoding.EncodeToString(sum[:]) + "i"
		out = append(out, vector{testCase: c, YAML: string(y), InstanceID: id})
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		panic(err)
	}
}
