// Command instanceidvectors prints reference instance IDs computed the way
// upstream FMA computes them: sigs.k8s.io/yaml.Marshal of the ISC's
// modelServerConfig, then "I" + base64url(SHA-256(Y + ";gpus=" + U)) + "i".
//
// Usage (from this folder, offline with a warm module cache):
//
//	GOFLAGS=-mod=mod GOPROXY=off GOSUMDB=off go run . < cases.json > vectors.json
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
	YAML       string `json:"yaml"`
	InstanceID string `json:"instance_id"`
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
			panic(err)
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
