package guard

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	agenttrust "github.com/agenttrustid/agenttrust-go"
	"github.com/agenttrustid/agenttrust-go/agenttrusttest"
)

type runnerEnv struct {
	srv     *agenttrusttest.Server
	agentID string
	client  *agenttrust.Client
}

func newRunnerEnv(t *testing.T) *runnerEnv {
	t.Helper()
	srv := agenttrusttest.NewTestServer(t, agenttrusttest.WithSplitListeners())
	return &runnerEnv{srv: srv, agentID: srv.CreateAgent("runner"), client: fakeClient(t, srv)}
}

func (e *runnerEnv) guard(t *testing.T, opts ...Option) *Guard {
	t.Helper()
	g, err := New(e.client, e.agentID, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Close(context.Background()) })
	return g
}

func mustRunner(t *testing.T, g *Guard, opts ...ToolOption) *ToolRunner {
	t.Helper()
	r, err := NewToolRunner(g, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// counting returns a run function that counts its calls and fails with err.
func counting(n *atomic.Int32, err error) func(context.Context) error {
	return func(context.Context) error {
		n.Add(1)
		time.Sleep(2 * time.Millisecond)
		return err
	}
}

type diskError struct{}

func (diskError) Error() string { return "disk on fire at /secret" }

func TestToolRunnerAllowRunsAndReports(t *testing.T) {
	e := newRunnerEnv(t)
	g := e.guard(t)
	r := mustRunner(t, g)
	var n atomic.Int32
	obs, ran, err := r.Run(context.Background(), "read_file", "/etc/hosts", counting(&n, nil))
	if obs != "" || !ran || err != nil || n.Load() != 1 {
		t.Fatalf("Run = %q, %v, %v (ran %d)", obs, ran, err, n.Load())
	}
	_, ran, err = r.Run(context.Background(), "read_file", "x", counting(&n, diskError{}))
	if !ran || !errors.Is(err, diskError{}) {
		t.Fatalf("inner error not returned unchanged: %v", err)
	}
	if err := g.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	evs := e.srv.TelemetryEvents()
	if len(evs) != 2 || evs[0].EventType != "tool_end" || (evs[0].Success == nil || !*evs[0].Success) ||
		evs[1].EventType != "tool_error" || evs[1].ErrorType != "guard.diskError" {
		t.Fatalf("events %v", evs)
	}
	if ms := evs[0].DurationMs; ms == nil || *ms < 2 {
		t.Fatalf("duration_ms %v does not cover the run", ms)
	}
	for _, req := range e.srv.Requests() {
		if strings.Contains(string(req.Body), "/etc/hosts") || strings.Contains(string(req.Body), "disk on fire") {
			t.Fatalf("input or error text sent to %s", req.Path)
		}
	}
	if c := e.srv.Checks()[0]; c.ActionInputSummary != "[10 chars]" || c.ActionName != "read_file" {
		t.Fatalf("check %v", c)
	}
}

func TestToolRunnerDenials(t *testing.T) {
	e := newRunnerEnv(t)
	e.srv.DenyTool("delete_file", "destructive")
	e.srv.RequireElevation("send_email")
	for _, block := range []bool{true, false} {
		g := e.guard(t, WithBlockOnDeny(block))
		var n atomic.Int32
		_, ran, err := mustRunner(t, g).Run(context.Background(), "delete_file", "x", counting(&n, nil))
		var de *DeniedError
		if ran || n.Load() != 0 || !errors.As(err, &de) || de.Reason != "destructive" || de.CheckID == "" {
			t.Fatalf("block=%v: ran %v/%d, err %v", block, ran, n.Load(), err)
		}
		obsRunner := mustRunner(t, g, WithDenialAsObservation(nil))
		obs, ran, err := obsRunner.Run(context.Background(), "delete_file", "x", counting(&n, nil))
		if obs != `Tool "delete_file" was denied by policy.` || ran || err != nil || n.Load() != 0 {
			t.Fatalf("block=%v: observation %q, %v, %v", block, obs, ran, err)
		}
		_, ran, err = obsRunner.Run(context.Background(), "send_email", "x", counting(&n, nil))
		var ee *ElevationRequiredError
		if ran || n.Load() != 0 || !errors.As(err, &ee) || ee.ApprovalID == "" {
			t.Fatalf("block=%v: elevation became %v (ran %v)", block, err, ran)
		}
		if s := g.Stats(); s.Reported != 0 {
			t.Fatalf("a denial reported events: %+v", s)
		}
	}
	custom := mustRunner(t, e.guard(t), WithDenialAsObservation(func(d *DeniedError) string { return "no: " + d.Reason }))
	if obs, _, _ := custom.Run(context.Background(), "delete_file", "", func(context.Context) error { return nil }); obs != "no: destructive" {
		t.Fatalf("custom observation %q", obs)
	}
}

func TestToolRunnerUnavailable(t *testing.T) {
	e := newRunnerEnv(t)
	e.srv.InjectFault("POST /api/v1/agenttrust/check", agenttrusttest.Fault{Status: 503})
	var n atomic.Int32
	closed := mustRunner(t, e.guard(t, WithCheckTimeout(200*time.Millisecond)), WithDenialAsObservation(nil))
	if _, ran, err := closed.Run(context.Background(), "read_file", "", counting(&n, nil)); ran || n.Load() != 0 || !errors.Is(err, ErrGuardianUnavailable) {
		t.Fatalf("fail-closed: ran %v, err %v", ran, err)
	}
	open := mustRunner(t, e.guard(t, WithFailOpen(true), WithCheckTimeout(200*time.Millisecond)))
	if _, ran, err := open.Run(context.Background(), "read_file", "", counting(&n, nil)); !ran || err != nil || n.Load() != 1 {
		t.Fatalf("fail-open: ran %v, err %v", ran, err)
	}
}

func TestToolRunnerSummariesAndEffects(t *testing.T) {
	e := newRunnerEnv(t)
	g := e.guard(t)
	long := strings.Repeat("ü", 300)
	last := func(opts ...ToolOption) agenttrusttest.CheckRecord {
		t.Helper()
		if _, _, err := mustRunner(t, g, opts...).Run(context.Background(), "delete_file", long, func(context.Context) error { return nil }); err != nil {
			t.Fatal(err)
		}
		cs := e.srv.Checks()
		return cs[len(cs)-1]
	}
	if c := last(); c.ActionInputSummary != "[300 chars]" {
		t.Errorf("default summary %v", c.ActionInputSummary)
	}
	if c := last(WithLogInputs(10)); c.ActionInputSummary != strings.Repeat("ü", 10) {
		t.Errorf("WithLogInputs(10): %v", c.ActionInputSummary)
	}
	if c := last(WithLogInputs(0)); c.ActionInputSummary != strings.Repeat("ü", 200) {
		t.Errorf("WithLogInputs(0) not 200 runes")
	}
	if c := last(WithSummarizer(func(tool, in string) string { return tool + ":" + in })); c.ActionInputSummary != "delete_file:"+strings.Repeat("ü", 188) {
		t.Errorf("summarizer not cut: %v", c.ActionInputSummary)
	}
	effects := map[string]Effect{"delete_file": EffectDestructive}
	opt := WithActionEffects(effects)
	effects["delete_file"] = EffectRead // the option holds a copy
	if c := last(WithActionEffect(EffectMutating), opt); c.ActionEffect != "destructive" {
		t.Errorf("action_effect %v", c.ActionEffect)
	}
	if c := last(WithActionEffect(EffectMutating)); c.ActionEffect != "mutating" {
		t.Errorf("action_effect %v", c.ActionEffect)
	}
	if c := last(); c.ActionEffect != "" {
		t.Errorf("action_effect sent without configuration: %v", c.ActionEffect)
	}
}

func TestToolRunnerInvalidUse(t *testing.T) {
	if r, err := NewToolRunner(nil); r != nil || !errors.Is(err, agenttrust.ErrValidation) {
		t.Fatalf("NewToolRunner(nil) = %v, %v", r, err)
	}
	var n atomic.Int32
	var nilRunner *ToolRunner
	if _, ran, err := nilRunner.Run(context.Background(), "t", "", counting(&n, nil)); ran || n.Load() != 0 || !errors.Is(err, agenttrust.ErrValidation) {
		t.Fatalf("nil runner: ran %v, err %v", ran, err)
	}
	gw := newGateway(t)
	g := mustNew(t, newClient(t, gw.srv.URL))
	r := mustRunner(t, g, nil)
	if _, _, err := r.Run(context.Background(), "t", "", nil); !errors.Is(err, agenttrust.ErrValidation) {
		t.Fatalf("nil run: %v", err)
	}
	//lint:ignore SA1012 a nil ctx is what is tested
	if _, ran, err := r.Run(nil, "t", "", counting(&n, nil)); ran || !errors.Is(err, agenttrust.ErrValidation) {
		t.Fatalf("nil ctx: ran %v, err %v", ran, err)
	}
	if _, ran, err := r.Run(context.Background(), "", "", counting(&n, nil)); ran || !errors.Is(err, agenttrust.ErrValidation) {
		t.Fatalf("empty tool: ran %v, err %v", ran, err)
	}
	if len(gw.checkBodies()) != 0 || n.Load() != 0 {
		t.Fatal("invalid use reached the gateway or ran the tool")
	}
}
