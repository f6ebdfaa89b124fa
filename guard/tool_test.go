package guard

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	agenttrust "github.com/agenttrustid/agenttrust-go"
	"github.com/agenttrustid/agenttrust-go/agenttrusttest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
	require.NoError(t, err)
	t.Cleanup(func() { _ = g.Close(context.Background()) })
	return g
}

func mustRunner(t *testing.T, g *Guard, opts ...ToolOption) *ToolRunner {
	t.Helper()
	r, err := NewToolRunner(g, opts...)
	require.NoError(t, err)
	return r
}

// counting returns a run function that counts its calls and fails with err.
func counting(n *atomic.Int32, err error) func(context.Context) error {
	return func(context.Context) error {
		n.Add(1)
		// The tool's own work: a run that takes time, whose duration the
		// reported event must cover.
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
	require.Equal(t, "", obs, "Run = %q, %v, %v (ran %d)", obs, ran, err, n.Load())
	require.True(t, ran, "Run = %q, %v, %v (ran %d)", obs, ran, err, n.Load())
	require.NoError(t, err, "Run = %q, %v, %v (ran %d)", obs, ran, err, n.Load())
	require.EqualValues(t, 1, n.Load(), "Run = %q, %v, %v (ran %d)", obs, ran, err, n.Load())
	_, ran, err = r.Run(context.Background(), "read_file", "x", counting(&n, diskError{}))
	require.True(t, ran, "inner error not returned unchanged: %v", err)
	require.ErrorIs(t, err, diskError{}, "inner error not returned unchanged: %v", err)
	require.NoError(t, g.Close(context.Background()))
	evs := e.srv.TelemetryEvents()
	require.Len(t, evs, 2, "events %v", evs)
	require.Equal(t, "tool_end", evs[0].EventType, "events %v", evs)
	require.NotNil(t, evs[0].Success, "events %v", evs)
	require.True(t, *evs[0].Success, "events %v", evs)
	require.Equal(t, "tool_error", evs[1].EventType, "events %v", evs)
	require.Equal(t, "guard.diskError", evs[1].ErrorType, "events %v", evs)
	ms := evs[0].DurationMs
	require.NotNil(t, ms, "duration_ms %v does not cover the run", ms)
	require.GreaterOrEqual(t, *ms, int64(2), "duration_ms %v does not cover the run", ms)
	for _, req := range e.srv.Requests() {
		require.NotContains(t, string(req.Body), "/etc/hosts", "input or error text sent to %s", req.Path)
		require.NotContains(t, string(req.Body), "disk on fire", "input or error text sent to %s", req.Path)
	}
	c := e.srv.Checks()[0]
	require.Equal(t, "[10 chars]", c.ActionInputSummary, "check %v", c)
	require.Equal(t, "read_file", c.ActionName, "check %v", c)
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
		require.False(t, ran, "block=%v: ran %v/%d, err %v", block, ran, n.Load(), err)
		require.EqualValues(t, 0, n.Load(), "block=%v: ran %v/%d, err %v", block, ran, n.Load(), err)
		require.ErrorAs(t, err, &de, "block=%v: ran %v/%d, err %v", block, ran, n.Load(), err)
		require.Equal(t, "destructive", de.Reason, "block=%v: ran %v/%d, err %v", block, ran, n.Load(), err)
		require.NotEqual(t, "", de.CheckID, "block=%v: ran %v/%d, err %v", block, ran, n.Load(), err)
		obsRunner := mustRunner(t, g, WithDenialAsObservation(nil))
		obs, ran, err := obsRunner.Run(context.Background(), "delete_file", "x", counting(&n, nil))
		require.Equal(t, `Tool "delete_file" was denied by policy.`, obs, "block=%v: observation %q, %v, %v", block, obs, ran, err)
		require.False(t, ran, "block=%v: observation %q, %v, %v", block, obs, ran, err)
		require.NoError(t, err, "block=%v: observation %q, %v, %v", block, obs, ran, err)
		require.EqualValues(t, 0, n.Load(), "block=%v: observation %q, %v, %v", block, obs, ran, err)
		_, ran, err = obsRunner.Run(context.Background(), "send_email", "x", counting(&n, nil))
		var ee *ElevationRequiredError
		require.False(t, ran, "block=%v: elevation became %v (ran %v)", block, err, ran)
		require.EqualValues(t, 0, n.Load(), "block=%v: elevation became %v (ran %v)", block, err, ran)
		require.ErrorAs(t, err, &ee, "block=%v: elevation became %v (ran %v)", block, err, ran)
		require.NotEqual(t, "", ee.ApprovalID, "block=%v: elevation became %v (ran %v)", block, err, ran)
		s := g.Stats()
		require.EqualValues(t, 0, s.Reported, "a denial reported events: %+v", s)
	}
	custom := mustRunner(t, e.guard(t), WithDenialAsObservation(func(d *DeniedError) string { return "no: " + d.Reason }))
	obs, _, _ := custom.Run(context.Background(), "delete_file", "", func(context.Context) error { return nil })
	require.Equal(t, "no: destructive", obs, "custom observation %q", obs)
}

func TestToolRunnerUnavailable(t *testing.T) {
	e := newRunnerEnv(t)
	e.srv.InjectFault("POST /api/v1/agenttrust/check", agenttrusttest.Fault{Status: 503})
	var n atomic.Int32
	closed := mustRunner(t, e.guard(t, WithCheckTimeout(200*time.Millisecond)), WithDenialAsObservation(nil))
	_, ran, err := closed.Run(context.Background(), "read_file", "", counting(&n, nil))
	require.False(t, ran, "fail-closed: ran %v, err %v", ran, err)
	require.EqualValues(t, 0, n.Load(), "fail-closed: ran %v, err %v", ran, err)
	require.ErrorIs(t, err, ErrGuardianUnavailable, "fail-closed: ran %v, err %v", ran, err)
	open := mustRunner(t, e.guard(t, WithFailOpen(true), WithCheckTimeout(200*time.Millisecond)))
	_, ran, err = open.Run(context.Background(), "read_file", "", counting(&n, nil))
	require.True(t, ran, "fail-open: ran %v, err %v", ran, err)
	require.NoError(t, err, "fail-open: ran %v, err %v", ran, err)
	require.EqualValues(t, 1, n.Load(), "fail-open: ran %v, err %v", ran, err)
}

func TestToolRunnerSummariesAndEffects(t *testing.T) {
	e := newRunnerEnv(t)
	g := e.guard(t)
	long := strings.Repeat("ü", 300)
	last := func(opts ...ToolOption) agenttrusttest.CheckRecord {
		t.Helper()
		_, _, err := mustRunner(t, g, opts...).Run(context.Background(), "delete_file", long, func(context.Context) error { return nil })
		require.NoError(t, err)
		cs := e.srv.Checks()
		return cs[len(cs)-1]
	}
	c := last()
	assert.Equal(t, "[300 chars]", c.ActionInputSummary, "default summary %v", c.ActionInputSummary)
	c = last(WithLogInputs(10))
	assert.Equal(t, strings.Repeat("ü", 10), c.ActionInputSummary, "WithLogInputs(10): %v", c.ActionInputSummary)
	assert.Equal(t, strings.Repeat("ü", 200), last(WithLogInputs(0)).ActionInputSummary, "WithLogInputs(0) not 200 runes")
	c = last(WithSummarizer(func(tool, in string) string { return tool + ":" + in }))
	assert.Equal(t, "delete_file:"+strings.Repeat("ü", 188), c.ActionInputSummary, "summarizer not cut: %v", c.ActionInputSummary)
	effects := map[string]Effect{"delete_file": EffectDestructive}
	opt := WithActionEffects(effects)
	effects["delete_file"] = EffectRead // the option holds a copy
	c = last(WithActionEffect(EffectMutating), opt)
	assert.Equal(t, "destructive", c.ActionEffect, "action_effect %v", c.ActionEffect)
	c = last(WithActionEffect(EffectMutating))
	assert.Equal(t, "mutating", c.ActionEffect, "action_effect %v", c.ActionEffect)
	c = last()
	assert.Equal(t, "", c.ActionEffect, "action_effect sent without configuration: %v", c.ActionEffect)
}

func TestToolRunnerInvalidUse(t *testing.T) {
	r, err := NewToolRunner(nil)
	require.Nil(t, r, "NewToolRunner(nil) = %v, %v", r, err)
	require.ErrorIs(t, err, agenttrust.ErrValidation, "NewToolRunner(nil) = %v, %v", r, err)
	var n atomic.Int32
	var nilRunner *ToolRunner
	_, ran, err := nilRunner.Run(context.Background(), "t", "", counting(&n, nil))
	require.False(t, ran, "nil runner: ran %v, err %v", ran, err)
	require.EqualValues(t, 0, n.Load(), "nil runner: ran %v, err %v", ran, err)
	require.ErrorIs(t, err, agenttrust.ErrValidation, "nil runner: ran %v, err %v", ran, err)
	gw := newGateway(t)
	g := mustNew(t, newClient(t, gw.srv.URL))
	r = mustRunner(t, g, nil)
	_, _, err = r.Run(context.Background(), "t", "", nil)
	require.ErrorIs(t, err, agenttrust.ErrValidation, "nil run: %v", err)
	//lint:ignore SA1012 a nil ctx is what is tested
	_, ran, err = r.Run(nil, "t", "", counting(&n, nil))
	require.False(t, ran, "nil ctx: ran %v, err %v", ran, err)
	require.ErrorIs(t, err, agenttrust.ErrValidation, "nil ctx: ran %v, err %v", ran, err)
	_, ran, err = r.Run(context.Background(), "", "", counting(&n, nil))
	require.False(t, ran, "empty tool: ran %v, err %v", ran, err)
	require.ErrorIs(t, err, agenttrust.ErrValidation, "empty tool: ran %v, err %v", ran, err)
	require.Len(t, gw.checkBodies(), 0, "invalid use reached the gateway or ran the tool")
	require.EqualValues(t, 0, n.Load(), "invalid use reached the gateway or ran the tool")
}
