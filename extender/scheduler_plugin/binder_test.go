package main

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	fwk "k8s.io/kube-scheduler/framework"
)

// recordingBinder is the inner BindPlugin: it counts concurrent calls and holds each until released.
type recordingBinder struct {
	inFlight, peak, calls atomic.Int32
	release               chan struct{}
	err                   error
}

func (r *recordingBinder) Name() string { return "recording" }

func (r *recordingBinder) Bind(ctx context.Context, _ fwk.CycleState, _ *v1.Pod, _ string) *fwk.Status {
	now := r.inFlight.Add(1)
	defer r.inFlight.Add(-1)
	r.calls.Add(1)
	for {
		old := r.peak.Load()
		if now <= old || r.peak.CompareAndSwap(old, now) {
			break
		}
	}
	select {
	case <-r.release:
	case <-ctx.Done():
	}
	if r.err != nil {
		return fwk.AsStatus(r.err)
	}
	return nil
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestPacedBinderHoldsAtMostMaxInFlight(t *testing.T) {
	inner := &recordingBinder{release: make(chan struct{})}
	b := newPacedBinder(inner, 3)
	var wg sync.WaitGroup
	statuses := make([]*fwk.Status, 10)
	for i := range statuses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i] = b.Bind(context.Background(), nil, pod("p", "", "1"), "n")
		}()
	}
	waitFor(t, "3 calls in flight", func() bool { return inner.inFlight.Load() == 3 })
	if got := inner.calls.Load(); got != 3 {
		t.Fatalf("with 3 slots held, %d calls reached the inner binder", got)
	}
	close(inner.release)
	wg.Wait()
	if inner.peak.Load() != 3 || inner.calls.Load() != 10 {
		t.Fatalf("peak %d calls %d, want 3 and 10", inner.peak.Load(), inner.calls.Load())
	}
	for i, s := range statuses {
		if !s.IsSuccess() {
			t.Fatalf("bind %d: %v", i, s)
		}
	}
}

func TestPacedBinderReleasesItsSlotOnFailure(t *testing.T) {
	inner := &recordingBinder{release: make(chan struct{}), err: errors.New("conflict")}
	close(inner.release)
	b := newPacedBinder(inner, 1)
	for i := range 3 {
		if s := b.Bind(context.Background(), nil, pod("p", "", "1"), "n"); s.IsSuccess() || !strings.Contains(s.Message(), "conflict") {
			t.Fatalf("bind %d: want the inner error, got %v", i, s)
		}
	}
}

func TestPacedBinderStopsWaitingWhenTheCycleEnds(t *testing.T) {
	inner := &recordingBinder{release: make(chan struct{})}
	b := newPacedBinder(inner, 1)
	go b.Bind(context.Background(), nil, pod("holder", "", "1"), "n")
	waitFor(t, "the slot taken", func() bool { return inner.inFlight.Load() == 1 })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s := b.Bind(ctx, nil, pod("waiter", "", "1"), "n")
	if s.IsSuccess() || !strings.Contains(s.Message(), "waiting for a binding slot") {
		t.Fatalf("want a cancelled wait, got %v", s)
	}
	if inner.calls.Load() != 1 {
		t.Fatalf("the cancelled bind reached the inner binder")
	}
	close(inner.release)
}

func TestPacedBinderArgs(t *testing.T) {
	cases := []struct {
		name string
		obj  runtime.Object
		want int
		err  string
	}{
		{"no args: the default", nil, DefaultMaxInFlight, ""},
		{"empty args: the default", &runtime.Unknown{}, DefaultMaxInFlight, ""},
		{"a value", &runtime.Unknown{Raw: []byte(`{"maxInFlight": 64}`)}, 64, ""},
		{"type header accepted", &runtime.Unknown{Raw: []byte(`{"kind": "PacedBinderArgs", "maxInFlight": 8}`), ContentType: runtime.ContentTypeJSON}, 8, ""},
		{"zero refused", &runtime.Unknown{Raw: []byte(`{"maxInFlight": 0}`)}, 0, "args.maxInFlight must be at least 1, got 0"},
		{"negative refused", &runtime.Unknown{Raw: []byte(`{"maxInFlight": -2}`)}, 0, "got -2"},
		{"unknown field named", &runtime.Unknown{Raw: []byte(`{"maxInflight": 8}`)}, 0, `unknown field "maxInflight"`},
		{"wrong type named", &runtime.Unknown{Raw: []byte(`{"maxInFlight": "many"}`)}, 0, "maxInFlight"},
		{"YAML content refused", &runtime.Unknown{Raw: []byte(`maxInFlight: 8`), ContentType: runtime.ContentTypeYAML}, 0, "JSON only"},
		{"not runtime.Unknown", &v1.Pod{}, 0, "want args of type runtime.Unknown"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args, err := decodePacedBinderArgs(tc.obj)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), PacedBinderName) {
					t.Fatalf("want an error with %q naming the plugin, got %v", tc.err, err)
				}
				return
			}
			if err != nil || args.MaxInFlight != tc.want {
				t.Fatalf("want maxInFlight %d, got %d, %v", tc.want, args.MaxInFlight, err)
			}
		})
	}
}
