// Package main is FMA's kube-scheduler build: the stock scheduler plus one PreFilter plugin,
// NominatedNode, that honours the node the FMA webhook chose at admission.
//
// The webhook (placement nominate) writes the certain-hot node of a requester into the annotation
// dual-pods.llm-d.ai/nominated-node. The first time this plugin sees a Pod (by UID) carrying that
// annotation, and the node exists and has room for the Pod's resource requests, PreFilter answers a
// PreFilterResult naming only that node: the scheduler filters one node and, with one feasible node,
// skips scoring. Any later attempt for the same UID, an unknown node or a node without room gets no
// restriction, so a hint that went stale costs at most one failed cycle and the scheduler's back-off,
// never a block. No API writes, no HTTP: the sleeper model stays in the webhook.
//
// Shipped through the chart's placementNominate: plugin (docs/extender.md, "Scheduler plugin").
package main

import (
	"context"
	"sync"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins/noderesources"
)

const (
	// Name is the plugin's name in a KubeSchedulerConfiguration profile.
	Name = "NominatedNode"
	// NominatedNodeAnnotation is crds.keys.NOMINATED_NODE_ANNOTATION (a Python unit test keeps them equal).
	NominatedNodeAnnotation = "dual-pods.llm-d.ai/nominated-node"
	// maxRemembered bounds the set of UIDs already restricted once; when full it is cleared,
	// so a Pod still pending at that moment may be restricted once more (one more cycle at worst).
	maxRemembered = 1 << 16
)

// NodeInfoGetter returns the scheduler's snapshot of one node.
type NodeInfoGetter func(nodeName string) (fwk.NodeInfo, error)

// NominatedNode restricts a Pod's first scheduling attempt to its annotated node.
type NominatedNode struct {
	nodeInfo NodeInfoGetter

	mu   sync.Mutex
	seen map[types.UID]struct{}
}

var _ fwk.PreFilterPlugin = &NominatedNode{}

// New is the plugin factory registered with app.WithPlugin.
func New(_ context.Context, _ runtime.Object, h fwk.Handle) (fwk.Plugin, error) {
	return newPlugin(func(nodeName string) (fwk.NodeInfo, error) {
		return h.SnapshotSharedLister().NodeInfos().Get(nodeName)
	}), nil
}

func newPlugin(getter NodeInfoGetter) *NominatedNode {
	return &NominatedNode{nodeInfo: getter, seen: make(map[types.UID]struct{})}
}

// Name implements fwk.Plugin.
func (p *NominatedNode) Name() string { return Name }

// firstAttempt records uid and reports whether it had not been seen before.
func (p *NominatedNode) firstAttempt(uid types.UID) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.seen[uid]; ok {
		return false
	}
	if len(p.seen) >= maxRemembered {
		clear(p.seen)
	}
	p.seen[uid] = struct{}{}
	return true
}

// PreFilter implements fwk.PreFilterPlugin: a one-node result on the first attempt when the annotated
// node exists and fits the Pod's requests; Skip otherwise (no restriction, nothing for Filter to do).
func (p *NominatedNode) PreFilter(_ context.Context, _ fwk.CycleState, pod *v1.Pod, _ []fwk.NodeInfo) (*fwk.PreFilterResult, *fwk.Status) {
	nodeName := pod.Annotations[NominatedNodeAnnotation]
	if nodeName == "" || !p.firstAttempt(pod.UID) {
		return nil, fwk.NewStatus(fwk.Skip)
	}
	info, err := p.nodeInfo(nodeName)
	if err != nil || info == nil || info.Node() == nil {
		return nil, fwk.NewStatus(fwk.Skip)
	}
	if len(noderesources.Fits(pod, info, nil, noderesources.ResourceRequestsOptions{})) > 0 {
		return nil, fwk.NewStatus(fwk.Skip)
	}
	return &fwk.PreFilterResult{NodeNames: sets.New(nodeName)}, nil
}

// PreFilterExtensions implements fwk.PreFilterPlugin; the plugin keeps no per-cycle state.
func (p *NominatedNode) PreFilterExtensions() fwk.PreFilterExtensions { return nil }
