package main

// PacedBinder: kube-scheduler's DefaultBinder with at most maxInFlight binding calls in flight.
//
// The scheduler binds each Pod in a goroutine of its own. When scheduling is cheap (NominatedNode
// restricts a Pod to one node and skips scoring) a burst of pending requesters is placed far faster
// than the API server completes bindings, so thousands of pods/binding calls reach it at once. API
// Priority and Fairness queues a bounded number per flow and answers the rest 429 with Retry-After,
// and client-go then sleeps before each retry: the last Pods of a burst bind seconds late
// (docs/performance.md, "Paced binding: the plugin's slow rounds, explained and removed"). Holding the
// calls in the scheduler keeps them off the server's queues; the stock scheduler, whose scoring takes
// longer, rarely has that many in flight.

import (
	"context"
	"errors"
	"fmt"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins/defaultbinder"
	kjson "sigs.k8s.io/json"
)

const (
	// PacedBinderName is the plugin's name in a KubeSchedulerConfiguration profile (bind, replacing DefaultBinder).
	PacedBinderName = "PacedBinder"
	// DefaultMaxInFlight is maxInFlight when the profile gives no pluginConfig args.
	DefaultMaxInFlight = 64
)

// PacedBinderArgs is the plugin's pluginConfig args.
type PacedBinderArgs struct {
	// APIVersion and Kind are accepted and ignored, so args written with a type header still decode.
	APIVersion string `json:"apiVersion,omitempty"`
	Kind       string `json:"kind,omitempty"`
	// MaxInFlight is the most binding calls the scheduler has outstanding at once (at least 1).
	MaxInFlight int `json:"maxInFlight"`
}

// PacedBinder wraps a BindPlugin with a counting semaphore.
type PacedBinder struct {
	inner fwk.BindPlugin
	slots chan struct{}
}

var _ fwk.BindPlugin = &PacedBinder{}

// NewPacedBinder is the factory registered with app.WithPlugin: DefaultBinder behind the semaphore.
func NewPacedBinder(ctx context.Context, obj runtime.Object, h fwk.Handle) (fwk.Plugin, error) {
	args, err := decodePacedBinderArgs(obj)
	if err != nil {
		return nil, err
	}
	inner, err := defaultbinder.New(ctx, nil, h)
	if err != nil {
		return nil, err
	}
	return newPacedBinder(inner.(fwk.BindPlugin), args.MaxInFlight), nil
}

// decodePacedBinderArgs reads the args strictly (an unknown or duplicate field is an error naming it) and checks them.
func decodePacedBinderArgs(obj runtime.Object) (PacedBinderArgs, error) {
	args := PacedBinderArgs{MaxInFlight: DefaultMaxInFlight}
	if obj != nil {
		unknown, ok := obj.(*runtime.Unknown)
		if !ok {
			return args, fmt.Errorf("%s: want args of type runtime.Unknown, got %T", PacedBinderName, obj)
		}
		if len(unknown.Raw) > 0 {
			if unknown.ContentType != "" && unknown.ContentType != runtime.ContentTypeJSON {
				return args, fmt.Errorf("%s: args content type %q is not supported (JSON only)", PacedBinderName, unknown.ContentType)
			}
			// Field names match case-sensitively, as the API server's strict decoding does.
			strict, err := kjson.UnmarshalStrict(unknown.Raw, &args)
			if err == nil {
				err = errors.Join(strict...)
			}
			if err != nil {
				return args, fmt.Errorf("%s: args: %w", PacedBinderName, err)
			}
		}
	}
	if args.MaxInFlight < 1 {
		return args, fmt.Errorf("%s: args.maxInFlight must be at least 1, got %d", PacedBinderName, args.MaxInFlight)
	}
	return args, nil
}

func newPacedBinder(inner fwk.BindPlugin, maxInFlight int) *PacedBinder {
	return &PacedBinder{inner: inner, slots: make(chan struct{}, maxInFlight)}
}

// Name implements fwk.Plugin.
func (b *PacedBinder) Name() string { return PacedBinderName }

// Bind implements fwk.BindPlugin: waits for a slot (or the binding cycle's end), then binds as DefaultBinder.
func (b *PacedBinder) Bind(ctx context.Context, state fwk.CycleState, p *v1.Pod, nodeName string) *fwk.Status {
	select {
	case b.slots <- struct{}{}:
	case <-ctx.Done():
		return fwk.AsStatus(fmt.Errorf("%s: waiting for a binding slot: %w", PacedBinderName, ctx.Err()))
	}
	defer func() { <-b.slots }()
	return b.inner.Bind(ctx, state, p, nodeName)
}
