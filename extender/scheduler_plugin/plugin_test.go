package main

import (
	"context"
	"errors"
	"strconv"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/framework"
)

func node(name, cpu string) *framework.NodeInfo {
	info := framework.NewNodeInfo()
	info.SetNode(&v1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Status: v1.NodeStatus{Allocatable: v1.ResourceList{
			v1.ResourceCPU:  resource.MustParse(cpu),
			v1.ResourcePods: resource.MustParse("110"),
		}},
	})
	return info
}

func pod(uid, nominated, cpu string) *v1.Pod {
	p := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: uid, UID: types.UID(uid), Annotations: map[string]string{}},
		Spec: v1.PodSpec{Containers: []v1.Container{{
			Name:      "c",
			Resources: v1.ResourceRequirements{Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse(cpu)}},
		}}},
	}
	if nominated != "" {
		p.Annotations[NominatedNodeAnnotation] = nominated
	}
	return p
}

func getter(nodes ...*framework.NodeInfo) NodeInfoGetter {
	return func(name string) (fwk.NodeInfo, error) {
		for _, n := range nodes {
			if n.Node().Name == name {
				return n, nil
			}
		}
		return nil, errors.New("not found")
	}
}

func TestPreFilter(t *testing.T) {
	roomy, full := node("roomy", "4"), node("full", "4")
	full.AddPod(pod("occupant", "", "4"))
	cases := []struct {
		name     string
		pod      *v1.Pod
		attempts int
		restrict string // node named on the last attempt; "" for no restriction
	}{
		{"first attempt restricted to the annotated node", pod("a", "roomy", "1"), 1, "roomy"},
		{"second attempt of the same UID unrestricted", pod("b", "roomy", "1"), 2, ""},
		{"no annotation", pod("c", "", "1"), 1, ""},
		{"unknown node", pod("d", "gone", "1"), 1, ""},
		{"annotated node without room", pod("e", "full", "1"), 1, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := newPlugin(getter(roomy, full))
			var result *fwk.PreFilterResult
			var status *fwk.Status
			for range tc.attempts {
				result, status = p.PreFilter(context.Background(), nil, tc.pod, nil)
			}
			if tc.restrict == "" {
				if !status.IsSkip() || !result.AllNodes() {
					t.Fatalf("want Skip and no restriction, got %v %v", status, result)
				}
				return
			}
			if !status.IsSuccess() || result.AllNodes() || result.NodeNames.Len() != 1 || !result.NodeNames.Has(tc.restrict) {
				t.Fatalf("want exactly {%s}, got %v %v", tc.restrict, status, result)
			}
		})
	}
}

func TestRememberedSetIsBounded(t *testing.T) {
	p := newPlugin(getter())
	for i := range maxRemembered + 10 {
		p.firstAttempt(types.UID(strconv.Itoa(i)))
	}
	if len(p.seen) > maxRemembered {
		t.Fatalf("remembered %d UIDs, bound %d", len(p.seen), maxRemembered)
	}
}
