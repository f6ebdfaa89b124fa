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
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
	require.NoError(t, err)
	return c
}

func (e *env) guard(t *testing.T, opts ...guard.Option) *guard.Guard {
	t.Helper()
	g, err := guard.New(e.client, e.agentID, opts...)
	require.NoError(t, err)
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
		require.ErrorAs(t, err, &de, "block=%v", block)
		require.Equal(t, "destructive", de.Reason, "block=%v", block)
		require.NotEmpty(t, de.CheckID, "block=%v", block)
		require.NotEmpty(t, de.GuardTier, "block=%v", block)
		require.Equal(t, "delete_file", de.Tool, "block=%v", block)
		require.Zero(t, inner.calls.Load(), "block=%v: denied tool ran", block)
	}
}

func TestElevationInBothModes(t *testing.T) {
	e := newEnv(t)
	e.srv.RequireElevation("delete_file")
	for _, opts := range [][]lcg.Option{nil, {lcg.WithDenialAsObservation(nil)}} {
		inner := &stubTool{name: "delete_file"}
		_, err := runAgent(context.Background(), e.guard(t), inner, "delete_file", opts...)
		var ee *guard.ElevationRequiredError
		require.ErrorAs(t, err, &ee)
		require.NotEmpty(t, ee.ApprovalID)
		require.Zero(t, inner.calls.Load(), "tool ran without approval")
	}
}

func TestDenialAsObservation(t *testing.T) {
	e := newEnv(t)
	e.srv.DenyTool("delete_file", "destructive")
	inner := &stubTool{name: "delete_file"}
	out, err := runAgent(context.Background(), e.guard(t), inner, "delete_file", lcg.WithDenialAsObservation(nil))
	require.NoError(t, err)
	steps, _ := out["intermediateSteps"].([]schema.AgentStep)
	require.Equal(t, "done", out["output"], "output %v", out)
	require.Len(t, steps, 1, "output %v", out)
	require.Equal(t, `Tool "delete_file" was denied by policy.`, steps[0].Observation, "output %v", out)
	require.Zero(t, inner.calls.Load(), "denied tool ran")
	custom := lcg.WithDenialAsObservation(func(d *guard.DeniedError) string { return "no: " + d.Reason })
	out, err = runAgent(context.Background(), e.guard(t), inner, "delete_file", custom)
	require.NoError(t, err, "custom observation")
	steps, _ = out["intermediateSteps"].([]schema.AgentStep)
	require.NotEmpty(t, steps, "custom observation: %v", out)
	require.Equal(t, "no: destructive", steps[0].Observation, "custom observation: %v", out)
}

func TestAllowedRunWireAndTelemetry(t *testing.T) {
	e := newEnv(t)
	inner := &stubTool{name: "delete_file", out: "deleted"}
	g := e.guard(t)
	out, err := runAgent(context.Background(), g, inner, "DELETE_FILE") // the LLM's case differs
	require.NoError(t, err, "run")
	require.Equal(t, "done", out["output"], "run: %v", out)
	require.EqualValues(t, 1, inner.calls.Load(), "inner ran")
	checks := e.srv.Checks()
	require.Len(t, checks, 1)
	c := checks[0]
	want := agenttrusttest.CheckRecord{
		ActionName: "delete_file", ActionSource: "api", AgentID: e.agentID,
		SessionID: g.SessionID(), ActionInputSummary: fmt.Sprintf("[%d chars]", len([]rune(secretInput))),
	}
	assert.Equal(t, want, c, "check")
	assert.Empty(t, c.ActionEffect, "action_effect sent without configuration")
	for _, r := range e.srv.Requests() {
		require.NotContains(t, string(r.Body), secretInput, "tool input sent to %s %s", r.Method, r.Path)
		require.NotContains(t, r.RawQuery, secretInput, "tool input sent to %s %s", r.Method, r.Path)
	}
	require.NoError(t, g.Close(context.Background()))
	batches := e.srv.TelemetryBatches()
	for _, b := range batches {
		require.Equal(t, e.agentID, b.AgentID, "batch %v", b)
		require.Equal(t, g.SessionID(), b.SessionID, "batch %v", b)
	}
	evs := e.srv.TelemetryEvents()
	require.Len(t, evs, 2, "events %v", evs)
	require.Equal(t, "tool_start", evs[0].EventType, "events %v", evs)
	require.Equal(t, "delete_file", evs[0].ToolName, "events %v", evs)
	require.Equal(t, "tool_end", evs[1].EventType, "events %v", evs)
	require.NotNil(t, evs[1].Success, "events %v", evs)
	require.True(t, *evs[1].Success, "events %v", evs)
	require.NotNil(t, evs[1].DurationMs, "tool_end without duration_ms: %v", evs[1])
	s := g.Stats()
	require.EqualValues(t, 2, s.Sent, "stats %+v", s)
	require.Zero(t, s.Dropped, "stats %+v", s)
	require.Zero(t, s.Pending, "stats %+v", s)
}

func TestInnerErrorReported(t *testing.T) {
	e := newEnv(t)
	innerErr := &toolFailure{msg: "disk on fire at /secret/location"}
	inner := &stubTool{name: "delete_file", err: innerErr}
	g := e.guard(t)
	_, err := runAgent(context.Background(), g, inner, "delete_file")
	require.ErrorIs(t, err, innerErr, "want the inner error unchanged")
	require.NoError(t, g.Close(context.Background()))
	evs := e.srv.TelemetryEvents()
	require.Len(t, evs, 2, "events %v", evs)
	require.Equal(t, "tool_error", evs[1].EventType, "events %v", evs)
	require.NotNil(t, evs[1].Success, "events %v", evs)
	require.False(t, *evs[1].Success, "events %v", evs)
	require.Equal(t, "*agenttrustlangchaingo_test.toolFailure", evs[1].ErrorType, "events %v", evs)
	for _, b := range e.srv.Requests() {
		require.NotContains(t, string(b.Body), "disk on fire", "error text sent")
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
				require.NoError(t, err)
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
					require.NoError(t, err, "fail-open")
					require.EqualValues(t, 1, ran, "fail-open: tool runs")
					require.EqualValues(t, 1, g.Stats().FailedOpen, "fail-open: FailedOpen")
				case tc.unavailable:
					var ue *guard.UnavailableError
					require.ErrorAs(t, err, &ue, "fail-closed")
					require.Zero(t, ran, "fail-closed: tool ran")
				default:
					var ae *agenttrust.AgentTrustError
					require.ErrorAs(t, err, &ae, "open=%v", open)
					require.Equal(t, tc.status, ae.Status, "open=%v: %v", open, err)
					require.Zero(t, ran, "open=%v: tool ran", open)
					require.NotErrorIs(t, err, guard.ErrGuardianUnavailable, "open=%v", open)
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
	require.ErrorIs(t, err, context.Canceled)
	require.NotErrorIs(t, err, guard.ErrGuardianUnavailable)
	require.Zero(t, inner.calls.Load(), "tool ran")
}

func TestSummariesAndEffects(t *testing.T) {
	e := newEnv(t)
	long := strings.Repeat("ü", 300)
	call := func(opts ...lcg.Option) agenttrusttest.CheckRecord {
		t.Helper()
		e.srv.ClearRequests()
		w := lcg.WrapTool(&stubTool{name: "delete_file"}, e.guard(t), opts...)
		require.Equal(t, "delete_file", w.Name(), "name changed")
		require.Equal(t, "deletes a file", w.Description(), "description changed")
		_, err := w.Call(context.Background(), long)
		require.NoError(t, err)
		cs := e.srv.Checks()
		return cs[len(cs)-1]
	}
	assert.Equal(t, strings.Repeat("ü", 10), call(lcg.WithLogInputs(10)).ActionInputSummary, "WithLogInputs(10)")
	assert.Equal(t, strings.Repeat("ü", 200), call(lcg.WithLogInputs(1000)).ActionInputSummary, "WithLogInputs(1000) not capped at 200 runes")
	sum := lcg.WithSummarizer(func(tool, in string) string { return tool + ":" + in })
	assert.Equal(t, "delete_file:"+strings.Repeat("ü", 188), call(sum).ActionInputSummary, "summarizer result not cut to 200 runes")
	effects := map[string]guard.Effect{"delete_file": guard.EffectDestructive}
	opt := lcg.WithActionEffects(effects)
	effects["delete_file"] = guard.EffectRead // the option holds a copy
	assert.Equal(t, "destructive", call(opt, lcg.WithActionEffect(guard.EffectMutating)).ActionEffect, "action_effect")
	assert.Equal(t, "mutating", call(lcg.WithActionEffect(guard.EffectMutating)).ActionEffect, "action_effect")
}

func TestHandlerIgnoresUnknownTools(t *testing.T) {
	e := newEnv(t)
	g := e.guard(t)
	h := lcg.NewHandler(g, lcg.WrapTools([]tools.Tool{&stubTool{name: "delete_file"}}, g))
	h.HandleAgentAction(context.Background(), schema.AgentAction{Tool: "rm -rf /", ToolInput: secretInput})
	h.HandleAgentAction(context.Background(), schema.AgentAction{Tool: "Delete_File", ToolInput: secretInput})
	h.HandleToolStart(context.Background(), "ignored")
	s := g.Stats()
	require.EqualValues(t, 1, s.Reported, "stats %+v", s)
	h.HandleChainError(context.Background(), errors.New("x"))
	require.Eventually(t, func() bool { return len(e.srv.TelemetryEvents()) == 1 }, 5*time.Second, time.Millisecond,
		"HandleChainError did not flush")
	ev := e.srv.TelemetryEvents()[0]
	require.Equal(t, "delete_file", ev.ToolName, "event %v", ev)
	require.Equal(t, "tool_start", ev.EventType, "event %v", ev)
}

func TestRewrapUsesTheNewGuardOnly(t *testing.T) {
	e := newEnv(t)
	g1, g2 := e.guard(t), e.guard(t)
	inner := &stubTool{name: "delete_file", out: "deleted"}
	w := lcg.WrapTool(lcg.WrapTool(inner, g1), g2)
	out, err := w.Call(context.Background(), "x")
	require.NoError(t, err, "Call")
	require.Equal(t, "deleted", out, "Call")
	require.Equal(t, "delete_file", w.Name())
	require.EqualValues(t, 1, inner.calls.Load(), "inner ran")
	require.Len(t, e.srv.Checks(), 1, "checks for one call")
	s1, s2 := g1.Stats(), g2.Stats()
	require.Zero(t, s1.Checks, "first guard %+v", s1)
	require.Zero(t, s1.Reported, "first guard %+v", s1)
	require.EqualValues(t, 1, s2.Checks, "second guard %+v", s2)
	require.EqualValues(t, 1, s2.Reported, "second guard %+v", s2)
	ws := lcg.WrapTools(lcg.WrapTools([]tools.Tool{inner}, g1), g2)
	_, err = ws[0].Call(context.Background(), "x")
	require.NoError(t, err, "WrapTools rewrap")
	require.EqualValues(t, 2, g2.Stats().Checks, "WrapTools rewrap: second guard")
	require.Zero(t, g1.Stats().Checks, "WrapTools rewrap: first guard")
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
		assert.Empty(t, out, name)
		assert.ErrorIs(t, err, agenttrust.ErrValidation, "%s: want a validation error", name)
	}
	require.Zero(t, inner.calls.Load(), "an invalid wrap ran the tool")
	require.Empty(t, e.srv.Checks(), "an invalid wrap checked")
	// The zero Handler and NewHandler(nil, ...) are inert; nil elements and
	// tools without a name are skipped.
	for _, h := range []*lcg.Handler{{}, lcg.NewHandler(nil, []tools.Tool{inner}), lcg.NewHandler(g, []tools.Tool{nil, cases["nil tool"]})} {
		ctx := context.Background()
		h.HandleAgentAction(ctx, schema.AgentAction{Tool: "delete_file"})
		h.HandleAgentFinish(ctx, schema.AgentFinish{})
		h.HandleChainError(ctx, errors.New("x"))
	}
	s := g.Stats()
	require.Zero(t, s.Reported, "inert handlers reported: %+v", s)
}
