package agenttrustlangchaingo_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	agenttrust "github.com/agenttrustid/agenttrust-go"
	"github.com/agenttrustid/agenttrust-go/agenttrusttest"
	"github.com/agenttrustid/agenttrust-go/guard"
	lcg "github.com/agenttrustid/agenttrust-go/integrations/langchaingo"
	"github.com/tmc/langchaingo/agents"
	"github.com/tmc/langchaingo/chains"
	"github.com/tmc/langchaingo/llms/fake"
	"github.com/tmc/langchaingo/schema"
	"github.com/tmc/langchaingo/tools"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const secretInput = "/etc/passwd"

// stubTool counts its calls and returns a scripted result.
type stubTool struct {
	name  string
	calls atomic.Int32
	out   string
	err   error
}

func (s *stubTool) Name() string        { return s.name }
func (s *stubTool) Description() string { return "deletes a file" }
func (s *stubTool) Call(_ context.Context, input string) (string, error) {
	s.calls.Add(1)
	return s.out, s.err
}

// toolFailure is an inner tool's own error type.
type toolFailure struct{ msg string }

func (e *toolFailure) Error() string { return e.msg }

type env struct {
	srv     *agenttrusttest.Server
	client  *agenttrust.Client
	agentID string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	srv := agenttrusttest.NewTestServer(t, agenttrusttest.WithSplitListeners())
	return &env{srv: srv, client: clientFor(t, srv.URL(), srv.AuthURL(), srv.AuditURL(), srv.APIKey()), agentID: srv.CreateAgent("lc-agent")}
}

func clientFor(t *testing.T, base, auth, audit, key string) *agenttrust.Client {
	t.Helper()
	c, err := agenttrust.New(agenttrust.WithBaseURL(base), agenttrust.WithAuthURL(auth), agenttrust.WithAuditURL(audit),
		agenttrust.WithAPIKey(key), agenttrust.WithRetryPolicy(agenttrust.RetryPolicy{
			MaxRetries: 2, InitialBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond, MaxRetryAfter: 5 * time.Millisecond,
		}))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (e *env) guard(t *testing.T, opts ...guard.Option) *guard.Guard {
	t.Helper()
	g, err := guard.New(e.client, e.agentID, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Close(context.Background()) })
	return g
}

// runAgent runs a one-shot agent whose fake LLM asks for toolName with
// secretInput, then answers "done".
func runAgent(ctx context.Context, g *guard.Guard, inner tools.Tool, toolName string, opts ...lcg.Option) (map[string]any, error) {
	llm := fake.NewFakeLLM([]string{
		"Thought: I should delete the file.\nAction: " + toolName + "\nAction Input: " + secretInput,
		"Final Answer: done",
	})
	wrapped := lcg.WrapTools([]tools.Tool{inner}, g, opts...)
	h := lcg.NewHandler(g, wrapped)
	ex := agents.NewExecutor(agents.NewOneShotAgent(llm, wrapped),
		agents.WithMaxIterations(3), agents.WithCallbacksHandler(h), agents.WithReturnIntermediateSteps())
	return chains.Call(ctx, ex, map[string]any{"input": "clean up"})
}

func TestDenial(t *testing.T) {
	e := newEnv(t)
	e.srv.DenyTool("delete_file", "destructive")
	for _, block := range []bool{true, false} {
		inner := &stubTool{name: "delete_file", out: "deleted"}
		g := e.guard(t, guard.WithBlockOnDeny(block))
		_, err := runAgent(context.Background(), g, inner, "delete_file")
		var de *guard.DeniedError
		if !errors.As(err, &de) || de.Reason != "destructive" || de.CheckID == "" || de.GuardTier == "" || de.Tool != "delete_file" {
			t.Fatalf("block=%v: run error %v", block, err)
		}
		if n := inner.calls.Load(); n != 0 {
			t.Fatalf("block=%v: denied tool ran %d times", block, n)
		}
	}
}

func TestElevationInBothModes(t *testing.T) {
	e := newEnv(t)
	e.srv.RequireElevation("delete_file")
	for _, opts := range [][]lcg.Option{nil, {lcg.WithDenialAsObservation(nil)}} {
		inner := &stubTool{name: "delete_file"}
		_, err := runAgent(context.Background(), e.guard(t), inner, "delete_file", opts...)
		var ee *guard.ElevationRequiredError
		if !errors.As(err, &ee) || ee.ApprovalID == "" {
			t.Fatalf("run error %v", err)
		}
		if inner.calls.Load() != 0 {
			t.Fatal("tool ran without approval")
		}
	}
}

func TestDenialAsObservation(t *testing.T) {
	e := newEnv(t)
	e.srv.DenyTool("delete_file", "destructive")
	inner := &stubTool{name: "delete_file"}
	out, err := runAgent(context.Background(), e.guard(t), inner, "delete_file", lcg.WithDenialAsObservation(nil))
	if err != nil {
		t.Fatal(err)
	}
	steps, _ := out["intermediateSteps"].([]schema.AgentStep)
	if out["output"] != "done" || len(steps) != 1 || steps[0].Observation != `Tool "delete_file" was denied by policy.` {
		t.Fatalf("output %v", out)
	}
	if inner.calls.Load() != 0 {
		t.Fatal("denied tool ran")
	}
	custom := lcg.WithDenialAsObservation(func(d *guard.DeniedError) string { return "no: " + d.Reason })
	out, err = runAgent(context.Background(), e.guard(t), inner, "delete_file", custom)
	if steps, _ := out["intermediateSteps"].([]schema.AgentStep); err != nil || steps[0].Observation != "no: destructive" {
		t.Fatalf("custom observation: %v, %v", out, err)
	}
}

func TestAllowedRunWireAndTelemetry(t *testing.T) {
	e := newEnv(t)
	inner := &stubTool{name: "delete_file", out: "deleted"}
	g := e.guard(t)
	out, err := runAgent(context.Background(), g, inner, "DELETE_FILE") // the LLM's case differs
	if err != nil || out["output"] != "done" {
		t.Fatalf("run: %v, %v", out, err)
	}
	if n := inner.calls.Load(); n != 1 {
		t.Fatalf("inner ran %d times", n)
	}
	checks := e.srv.Checks()
	if len(checks) != 1 {
		t.Fatalf("checks %v", checks)
	}
	c := checks[0]
	want := agenttrusttest.CheckRecord{
		ActionName: "delete_file", ActionSource: "api", AgentID: e.agentID,
		SessionID: g.SessionID(), ActionInputSummary: fmt.Sprintf("[%d chars]", len([]rune(secretInput))),
	}
	if c != want {
		t.Errorf("check %+v, want %+v", c, want)
	}
	if c.ActionEffect != "" {
		t.Error("action_effect sent without configuration")
	}
	for _, r := range e.srv.Requests() {
		if strings.Contains(string(r.Body), secretInput) || strings.Contains(r.RawQuery, secretInput) {
			t.Fatalf("tool input sent to %s %s", r.Method, r.Path)
		}
	}
	if err := g.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	batches := e.srv.TelemetryBatches()
	for _, b := range batches {
		if b.AgentID != e.agentID || b.SessionID != g.SessionID() {
			t.Fatalf("batch %v", b)
		}
	}
	evs := e.srv.TelemetryEvents()
	if len(evs) != 2 || evs[0].EventType != "tool_start" || evs[0].ToolName != "delete_file" ||
		evs[1].EventType != "tool_end" || (evs[1].Success == nil || !*evs[1].Success) {
		t.Fatalf("events %v", evs)
	}
	if ok := evs[1].DurationMs != nil; !ok {
		t.Fatalf("tool_end without duration_ms: %v", evs[1])
	}
	if s := g.Stats(); s.Sent != 2 || s.Dropped != 0 || s.Pending != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestInnerErrorReported(t *testing.T) {
	e := newEnv(t)
	innerErr := &toolFailure{msg: "disk on fire at /secret/location"}
	inner := &stubTool{name: "delete_file", err: innerErr}
	g := e.guard(t)
	_, err := runAgent(context.Background(), g, inner, "delete_file")
	if !errors.Is(err, innerErr) {
		t.Fatalf("run error %v, want the inner error unchanged", err)
	}
	if err := g.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	evs := e.srv.TelemetryEvents()
	if len(evs) != 2 || evs[1].EventType != "tool_error" || (evs[1].Success == nil || *evs[1].Success) ||
		evs[1].ErrorType != "*agenttrustlangchaingo_test.toolFailure" {
		t.Fatalf("events %v", evs)
	}
	for _, b := range e.srv.Requests() {
		if strings.Contains(string(b.Body), "disk on fire") {
			t.Fatal("error text sent")
		}
	}
}

func TestFailOpenOnlyWhenUnavailable(t *testing.T) {
	const check = "POST /api/v1/agenttrust/check"
	cases := []struct {
		name        string
		fault       *agenttrusttest.Fault // nil: a closed listener
		unavailable bool
		status      int
	}{
		{"closed listener", nil, true, 0},
		{"hanging handler", &agenttrusttest.Fault{Latency: 10 * time.Second}, true, 0},
		{"500", &agenttrusttest.Fault{Status: 500}, true, 0},
		{"429", &agenttrusttest.Fault{Status: 429, RetryAfter: "1"}, true, 0},
		{"non-JSON 2xx", &agenttrusttest.Fault{Malformed: true}, true, 0},
		{"400", &agenttrusttest.Fault{Status: 400}, false, 400},
		{"401", &agenttrusttest.Fault{Status: 401}, false, 401},
		{"403", &agenttrusttest.Fault{Status: 403}, false, 403},
		{"404", &agenttrusttest.Fault{Status: 404}, false, 404},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			if tc.fault == nil {
				dead, err := agenttrusttest.NewServer()
				if err != nil {
					t.Fatal(err)
				}
				dead.Close()
				e.client = clientFor(t, e.srv.URL(), dead.URL(), e.srv.AuditURL(), e.srv.APIKey())
			} else {
				e.srv.InjectFault(check, *tc.fault)
			}
			for _, open := range []bool{true, false} {
				inner := &stubTool{name: "delete_file"}
				g := e.guard(t, guard.WithFailOpen(open), guard.WithCheckTimeout(150*time.Millisecond))
				_, err := runAgent(context.Background(), g, inner, "delete_file")
				ran := inner.calls.Load()
				switch {
				case tc.unavailable && open:
					if err != nil || ran != 1 || g.Stats().FailedOpen != 1 {
						t.Fatalf("fail-open: err %v, ran %d", err, ran)
					}
				case tc.unavailable:
					var ue *guard.UnavailableError
					if !errors.As(err, &ue) || ran != 0 {
						t.Fatalf("fail-closed: err %v, ran %d", err, ran)
					}
				default:
					var ae *agenttrust.AgentTrustError
					if !errors.As(err, &ae) || ae.Status != tc.status || ran != 0 || errors.Is(err, guard.ErrGuardianUnavailable) {
						t.Fatalf("open=%v: err %v, ran %d", open, err, ran)
					}
				}
			}
		})
	}
}

func TestCallerCancellation(t *testing.T) {
	e := newEnv(t)
	e.srv.InjectFault("POST /api/v1/agenttrust/check", agenttrusttest.Fault{Latency: 10 * time.Second})
	inner := &stubTool{name: "delete_file"}
	g := e.guard(t, guard.WithFailOpen(true))
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err := runAgent(ctx, g, inner, "delete_file", lcg.WithDenialAsObservation(nil))
	if !errors.Is(err, context.Canceled) || errors.Is(err, guard.ErrGuardianUnavailable) || inner.calls.Load() != 0 {
		t.Fatalf("err %v, ran %d", err, inner.calls.Load())
	}
}

func TestSummariesAndEffects(t *testing.T) {
	e := newEnv(t)
	long := strings.Repeat("ü", 300)
	call := func(opts ...lcg.Option) agenttrusttest.CheckRecord {
		t.Helper()
		e.srv.ClearRequests()
		w := lcg.WrapTool(&stubTool{name: "delete_file"}, e.guard(t), opts...)
		if w.Name() != "delete_file" || w.Description() != "deletes a file" {
			t.Fatal("name or description changed")
		}
		if _, err := w.Call(context.Background(), long); err != nil {
			t.Fatal(err)
		}
		cs := e.srv.Checks()
		return cs[len(cs)-1]
	}
	if c := call(lcg.WithLogInputs(10)); c.ActionInputSummary != strings.Repeat("ü", 10) {
		t.Errorf("WithLogInputs(10): %v", c.ActionInputSummary)
	}
	if c := call(lcg.WithLogInputs(1000)); c.ActionInputSummary != strings.Repeat("ü", 200) {
		t.Errorf("WithLogInputs(1000) not capped at 200 runes")
	}
	sum := lcg.WithSummarizer(func(tool, in string) string { return tool + ":" + in })
	if c := call(sum); c.ActionInputSummary != "delete_file:"+strings.Repeat("ü", 188) {
		t.Errorf("summarizer result not cut to 200 runes: %v", c.ActionInputSummary)
	}
	effects := map[string]guard.Effect{"delete_file": guard.EffectDestructive}
	opt := lcg.WithActionEffects(effects)
	effects["delete_file"] = guard.EffectRead // the option holds a copy
	if c := call(opt, lcg.WithActionEffect(guard.EffectMutating)); c.ActionEffect != "destructive" {
		t.Errorf("action_effect = %v", c.ActionEffect)
	}
	if c := call(lcg.WithActionEffect(guard.EffectMutating)); c.ActionEffect != "mutating" {
		t.Errorf("action_effect = %v", c.ActionEffect)
	}
}

func TestHandlerIgnoresUnknownTools(t *testing.T) {
	e := newEnv(t)
	g := e.guard(t)
	h := lcg.NewHandler(g, lcg.WrapTools([]tools.Tool{&stubTool{name: "delete_file"}}, g))
	h.HandleAgentAction(context.Background(), schema.AgentAction{Tool: "rm -rf /", ToolInput: secretInput})
	h.HandleAgentAction(context.Background(), schema.AgentAction{Tool: "Delete_File", ToolInput: secretInput})
	h.HandleToolStart(context.Background(), "ignored")
	if s := g.Stats(); s.Reported != 1 {
		t.Fatalf("stats %+v", s)
	}
	h.HandleChainError(context.Background(), errors.New("x"))
	deadline := time.Now().Add(5 * time.Second)
	for len(e.srv.TelemetryEvents()) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("HandleChainError did not flush")
		}
		time.Sleep(time.Millisecond)
	}
	if ev := e.srv.TelemetryEvents()[0]; ev.ToolName != "delete_file" || ev.EventType != "tool_start" {
		t.Fatalf("event %v", ev)
	}
}

func TestRewrapUsesTheNewGuardOnly(t *testing.T) {
	e := newEnv(t)
	g1, g2 := e.guard(t), e.guard(t)
	inner := &stubTool{name: "delete_file", out: "deleted"}
	w := lcg.WrapTool(lcg.WrapTool(inner, g1), g2)
	if out, err := w.Call(context.Background(), "x"); err != nil || out != "deleted" {
		t.Fatalf("Call = %q, %v", out, err)
	}
	if w.Name() != "delete_file" || inner.calls.Load() != 1 {
		t.Fatalf("name %q, inner ran %d times", w.Name(), inner.calls.Load())
	}
	if n := len(e.srv.Checks()); n != 1 {
		t.Fatalf("%d checks for one call", n)
	}
	if s1, s2 := g1.Stats(), g2.Stats(); s1.Checks != 0 || s1.Reported != 0 || s2.Checks != 1 || s2.Reported != 1 {
		t.Fatalf("first guard %+v, second guard %+v", s1, s2)
	}
	ws := lcg.WrapTools(lcg.WrapTools([]tools.Tool{inner}, g1), g2)
	if _, err := ws[0].Call(context.Background(), "x"); err != nil || g2.Stats().Checks != 2 || g1.Stats().Checks != 0 {
		t.Fatalf("WrapTools rewrap: %v, %+v", err, g2.Stats())
	}
}

func TestInvalidWrapsAreInert(t *testing.T) {
	e := newEnv(t)
	g := e.guard(t)
	inner := &stubTool{name: "delete_file"}
	cases := map[string]tools.Tool{
		"nil tool":    lcg.WrapTool(nil, g),
		"nil guard":   lcg.WrapTool(inner, nil),
		"nil element": lcg.WrapTools([]tools.Tool{nil}, g)[0],
	}
	for name, w := range cases {
		_ = w.Name()
		_ = w.Description()
		out, err := w.Call(context.Background(), "x")
		if out != "" || !errors.Is(err, agenttrust.ErrValidation) {
			t.Errorf("%s: Call = %q, %v; want a validation error", name, out, err)
		}
	}
	if inner.calls.Load() != 0 || len(e.srv.Checks()) != 0 {
		t.Fatal("an invalid wrap ran the tool or checked")
	}
	// The zero Handler and NewHandler(nil, ...) are inert; nil elements and
	// tools without a name are skipped.
	for _, h := range []*lcg.Handler{{}, lcg.NewHandler(nil, []tools.Tool{inner}), lcg.NewHandler(g, []tools.Tool{nil, cases["nil tool"]})} {
		ctx := context.Background()
		h.HandleAgentAction(ctx, schema.AgentAction{Tool: "delete_file"})
		h.HandleAgentFinish(ctx, schema.AgentFinish{})
		h.HandleChainError(ctx, errors.New("x"))
	}
	if s := g.Stats(); s.Reported != 0 {
		t.Fatalf("inert handlers reported: %+v", s)
	}
}
