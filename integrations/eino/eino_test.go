package agenttrusteino_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	agenttrust "github.com/agenttrustid/agenttrust-go"
	"github.com/agenttrustid/agenttrust-go/agenttrusttest"
	"github.com/agenttrustid/agenttrust-go/guard"
	ateino "github.com/agenttrustid/agenttrust-go/integrations/eino"
	"github.com/cloudwego/eino/components/model"
	"github.com/cloudwego/eino/components/tool"
	"github.com/cloudwego/eino/components/tool/utils"
	"github.com/cloudwego/eino/compose"
	"github.com/cloudwego/eino/flow/agent"
	"github.com/cloudwego/eino/flow/agent/react"
	"github.com/cloudwego/eino/schema"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	secretPath = "/etc/passwd"
	args       = `{"path":"` + secretPath + `"}`
)

type fileInput struct {
	Path string `json:"path"`
}

// stub is a tool body that counts its calls and returns a scripted result.
type stub struct {
	calls atomic.Int32
	out   string
	err   error
}

func (s *stub) run(_ context.Context, in fileInput) (string, error) {
	s.calls.Add(1)
	// Not a wait: the tool takes a moment, as a real one does, so that the
	// parallel tool calls of one turn overlap and the reported duration
	// measures real work.
	time.Sleep(time.Millisecond)
	if s.err != nil {
		return "", s.err
	}
	return s.out + " " + in.Path, nil
}

func (s *stub) tool(t *testing.T, name string) tool.InvokableTool {
	t.Helper()
	it, err := utils.InferTool(name, "a tool named "+name, s.run)
	require.NoError(t, err)
	return it
}

// toolFailure is an inner tool's own error type.
type toolFailure struct{ msg string }

func (e *toolFailure) Error() string { return e.msg }

// scriptedModel requests every tool of calls in its first turn (one
// message, so the ToolsNode runs them in parallel) and, once the tool
// results are in, answers "done:" followed by each result as name=result.
type scriptedModel struct{ calls []string }

func (m *scriptedModel) Generate(_ context.Context, input []*schema.Message, _ ...model.Option) (*schema.Message, error) {
	var answers []string
	for _, msg := range input {
		if msg.Role == schema.Tool {
			answers = append(answers, msg.ToolName+"="+msg.Content)
		}
	}
	if answers != nil {
		sort.Strings(answers)
		return schema.AssistantMessage("done: "+strings.Join(answers, "; "), nil), nil
	}
	calls := make([]schema.ToolCall, len(m.calls))
	for i, c := range m.calls {
		calls[i] = schema.ToolCall{ID: fmt.Sprintf("call_%d", i), Type: "function", Function: schema.FunctionCall{Name: c, Arguments: args}}
	}
	return schema.AssistantMessage("", calls), nil
}

func (m *scriptedModel) Stream(ctx context.Context, input []*schema.Message, opts ...model.Option) (*schema.StreamReader[*schema.Message], error) {
	msg, err := m.Generate(ctx, input, opts...)
	if err != nil {
		return nil, err
	}
	return schema.StreamReaderFromArray([]*schema.Message{msg}), nil
}

func (m *scriptedModel) WithTools([]*schema.ToolInfo) (model.ToolCallingChatModel, error) {
	return m, nil
}

type env struct {
	srv     *agenttrusttest.Server
	client  *agenttrust.Client
	agentID string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	srv := agenttrusttest.NewTestServer(t, agenttrusttest.WithSplitListeners())
	c, err := agenttrust.New(agenttrust.WithBaseURL(srv.URL()), agenttrust.WithAuthURL(srv.AuthURL()), agenttrust.WithAuditURL(srv.AuditURL()),
		agenttrust.WithAPIKey(srv.APIKey()), agenttrust.WithRetryPolicy(agenttrust.RetryPolicy{
			MaxRetries: 2, InitialBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond, MaxRetryAfter: 5 * time.Millisecond,
		}))
	require.NoError(t, err)
	return &env{srv: srv, client: c, agentID: srv.CreateAgent("eino-agent")}
}

func (e *env) guard(t *testing.T, opts ...guard.Option) *guard.Guard {
	t.Helper()
	g, err := guard.New(e.client, e.agentID, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = g.Close(context.Background()) })
	return g
}

// mode is one of the two ways to guard the tools of a ToolsNode.
type mode struct {
	name  string
	guard func(t *testing.T, tools []tool.BaseTool, g *guard.Guard, opts ...guard.ToolOption) compose.ToolsNodeConfig
}

var modes = []mode{
	{"middleware", func(t *testing.T, tools []tool.BaseTool, g *guard.Guard, opts ...guard.ToolOption) compose.ToolsNodeConfig {
		mw, err := ateino.Middleware(g, opts...)
		require.NoError(t, err)
		return compose.ToolsNodeConfig{Tools: tools, ToolCallMiddlewares: []compose.ToolMiddleware{mw}}
	}},
	{"wrapped", func(t *testing.T, tools []tool.BaseTool, g *guard.Guard, opts ...guard.ToolOption) compose.ToolsNodeConfig {
		wrapped, err := ateino.WrapTools(context.Background(), tools, g, opts...)
		require.NoError(t, err)
		return compose.ToolsNodeConfig{Tools: wrapped}
	}},
}

// run runs Eino's ReAct agent with the scripted model asking for calls.
func run(ctx context.Context, t *testing.T, cfg compose.ToolsNodeConfig, g *guard.Guard, calls ...string) (*schema.Message, error) {
	t.Helper()
	a, err := react.NewAgent(context.Background(), &react.AgentConfig{
		ToolCallingModel: &scriptedModel{calls: calls},
		ToolsConfig:      cfg,
		MaxStep:          6,
	})
	require.NoError(t, err)
	return a.Generate(ctx, []*schema.Message{schema.UserMessage("clean up")},
		agent.WithComposeOptions(compose.WithCallbacks(ateino.NewHandler(g))))
}

func TestAllowedToolRunsAndIsReported(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			e := newEnv(t)
			g := e.guard(t)
			inner := &stub{out: "deleted"}
			msg, err := run(context.Background(), t, m.guard(t, []tool.BaseTool{inner.tool(t, "delete_file")}, g), g, "delete_file")
			require.NoError(t, err, "run")
			require.Equal(t, "done: delete_file=deleted "+secretPath, msg.Content, "run")
			require.EqualValues(t, 1, inner.calls.Load(), "inner ran")
			checks := e.srv.Checks()
			require.Len(t, checks, 1)
			want := agenttrusttest.CheckRecord{
				ActionName: "delete_file", ActionSource: "api", AgentID: e.agentID, SessionID: g.SessionID(),
				ActionInputSummary: fmt.Sprintf("[%d chars]", len(args)),
			}
			assert.Equal(t, want, checks[0], "check")
			assert.Empty(t, checks[0].ActionEffect, "action_effect sent without configuration")
			require.NoError(t, g.Close(context.Background()))
			evs := e.srv.TelemetryEvents()
			require.Len(t, evs, 2, "events %v", evs)
			require.Equal(t, "tool_start", evs[0].EventType, "events %v", evs)
			require.Equal(t, "delete_file", evs[0].ToolName, "events %v", evs)
			require.Equal(t, "tool_end", evs[1].EventType, "events %v", evs)
			require.NotNil(t, evs[1].Success, "events %v", evs)
			require.True(t, *evs[1].Success, "events %v", evs)
			require.NotNil(t, evs[1].DurationMs, "tool_end without duration_ms: %v", evs[1])
			for _, b := range e.srv.TelemetryBatches() {
				require.Equal(t, e.agentID, b.AgentID, "batch %v", b)
				require.Equal(t, g.SessionID(), b.SessionID, "batch %v", b)
			}
			for _, r := range e.srv.Requests() {
				require.NotContains(t, string(r.Body), secretPath, "tool input sent to %s %s", r.Method, r.Path)
			}
			s := g.Stats()
			require.EqualValues(t, 2, s.Sent, "stats %+v", s)
			require.Zero(t, s.Dropped, "stats %+v", s)
		})
	}
}

func TestDeniedToolNeverRuns(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			e := newEnv(t)
			e.srv.DenyTool("delete_file", "destructive")
			for _, block := range []bool{true, false} {
				inner := &stub{out: "deleted"}
				g := e.guard(t, guard.WithBlockOnDeny(block))
				_, err := run(context.Background(), t, m.guard(t, []tool.BaseTool{inner.tool(t, "delete_file")}, g), g, "delete_file")
				var de *guard.DeniedError
				require.ErrorAs(t, err, &de, "block=%v", block)
				require.Equal(t, "destructive", de.Reason, "block=%v", block)
				require.NotEmpty(t, de.CheckID, "block=%v", block)
				require.NotEmpty(t, de.GuardTier, "block=%v", block)
				require.Equal(t, "delete_file", de.Tool, "block=%v", block)
				require.Zero(t, inner.calls.Load(), "block=%v: denied tool ran", block)
				s := g.Stats()
				require.EqualValues(t, 1, s.Denied, "stats %+v", s)
			}
		})
	}
}

func TestDenialAsObservation(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			e := newEnv(t)
			e.srv.DenyTool("delete_file", "destructive")
			del, read := &stub{out: "deleted"}, &stub{out: "contents of"}
			tools := []tool.BaseTool{del.tool(t, "delete_file"), read.tool(t, "read_file")}
			g := e.guard(t)
			msg, err := run(context.Background(), t, m.guard(t, tools, g, guard.WithDenialAsObservation(nil)), g, "delete_file", "read_file")
			want := `done: delete_file=Tool "delete_file" was denied by policy.; read_file=contents of ` + secretPath
			require.NoError(t, err, "run")
			require.Equal(t, want, msg.Content, "run")
			require.Zero(t, del.calls.Load(), "delete ran")
			require.EqualValues(t, 1, read.calls.Load(), "read ran")
			custom := guard.WithDenialAsObservation(func(d *guard.DeniedError) string { return "no: " + d.Reason })
			msg, err = run(context.Background(), t, m.guard(t, tools[:1], g, custom), g, "delete_file")
			require.NoError(t, err, "custom observation")
			require.Equal(t, "done: delete_file=no: destructive", msg.Content, "custom observation")
		})
	}
}

func TestElevationIsAnErrorInBothModes(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			e := newEnv(t)
			e.srv.RequireElevation("delete_file")
			for _, opts := range [][]guard.ToolOption{nil, {guard.WithDenialAsObservation(nil)}} {
				inner := &stub{}
				g := e.guard(t)
				_, err := run(context.Background(), t, m.guard(t, []tool.BaseTool{inner.tool(t, "delete_file")}, g, opts...), g, "delete_file")
				var ee *guard.ElevationRequiredError
				require.ErrorAs(t, err, &ee, "run error")
				require.NotEmpty(t, ee.ApprovalID, "run error %v", err)
				require.Zero(t, inner.calls.Load(), "tool ran without approval")
			}
		})
	}
}

func TestUnavailableGuardian(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			e := newEnv(t)
			e.srv.InjectFault("POST /api/v1/agenttrust/check", agenttrusttest.Fault{Status: 503})
			for _, open := range []bool{true, false} {
				inner := &stub{out: "deleted"}
				g := e.guard(t, guard.WithFailOpen(open), guard.WithCheckTimeout(300*time.Millisecond))
				msg, err := run(context.Background(), t, m.guard(t, []tool.BaseTool{inner.tool(t, "delete_file")}, g, guard.WithDenialAsObservation(nil)), g, "delete_file")
				if open {
					require.NoError(t, err, "fail-open")
					require.EqualValues(t, 1, inner.calls.Load(), "fail-open: tool runs")
					require.EqualValues(t, 1, g.Stats().FailedOpen, "fail-open: %+v", g.Stats())
					require.True(t, strings.HasPrefix(msg.Content, `done: delete_file=deleted`), "fail-open: answer %v", msg)
					continue
				}
				var ue *guard.UnavailableError
				var ae *agenttrust.AgentTrustError
				require.ErrorAs(t, err, &ue, "fail-closed")
				require.ErrorAs(t, ue.Cause, &ae, "fail-closed")
				require.Equal(t, 503, ae.Status, "fail-closed: %v", err)
				require.Zero(t, inner.calls.Load(), "fail-closed: tool ran")
			}
		})
	}
}

func TestInnerErrorReported(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			e := newEnv(t)
			innerErr := &toolFailure{msg: "disk on fire at /secret/location"}
			g := e.guard(t)
			inner := &stub{err: innerErr}
			_, err := run(context.Background(), t, m.guard(t, []tool.BaseTool{inner.tool(t, "delete_file")}, g), g, "delete_file")
			require.ErrorIs(t, err, innerErr, "want the inner error reachable")
			require.NoError(t, g.Close(context.Background()))
			evs := e.srv.TelemetryEvents()
			require.Len(t, evs, 2, "events %v", evs)
			require.Equal(t, "tool_error", evs[1].EventType, "events %v", evs)
			require.NotNil(t, evs[1].Success, "events %v", evs)
			require.False(t, *evs[1].Success, "events %v", evs)
			require.NotEmpty(t, evs[1].ErrorType, "no error_type: %v", evs[1])
			for _, r := range e.srv.Requests() {
				require.NotContains(t, string(r.Body), "disk on fire", "error text sent")
			}
		})
	}
}

func TestCallerCancellation(t *testing.T) {
	e := newEnv(t)
	e.srv.InjectFault("POST /api/v1/agenttrust/check", agenttrusttest.Fault{Latency: 10 * time.Second})
	for _, m := range modes {
		inner := &stub{}
		g := e.guard(t, guard.WithFailOpen(true))
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(50*time.Millisecond, cancel)
		_, err := run(ctx, t, m.guard(t, []tool.BaseTool{inner.tool(t, "delete_file")}, g, guard.WithDenialAsObservation(nil)), g, "delete_file")
		require.ErrorIs(t, err, context.Canceled, m.name)
		require.NotErrorIs(t, err, guard.ErrGuardianUnavailable, m.name)
		require.Zero(t, inner.calls.Load(), "%s: tool ran", m.name)
	}
}

// Several agents run at once on one Guard, each turn calling four tools in
// parallel (the ToolsNode's default).
func TestConcurrentToolCallsShareOneGuard(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			e := newEnv(t)
			g := e.guard(t, guard.WithBatchSize(5))
			names := []string{"t0", "t1", "t2", "t3"}
			stubs := make([]*stub, len(names))
			tools := make([]tool.BaseTool, len(names))
			for i, n := range names {
				stubs[i] = &stub{out: "ok"}
				tools[i] = stubs[i].tool(t, n)
			}
			cfg := m.guard(t, tools, g)
			const runs = 4
			var wg sync.WaitGroup
			errs := make(chan error, runs)
			for i := 0; i < runs; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					a, err := react.NewAgent(context.Background(), &react.AgentConfig{
						ToolCallingModel: &scriptedModel{calls: names}, ToolsConfig: cfg, MaxStep: 6,
					})
					if err != nil {
						errs <- err
						return
					}
					msg, err := a.Generate(context.Background(), []*schema.Message{schema.UserMessage("go")})
					if err == nil && !strings.HasPrefix(msg.Content, `done: t0=ok`) {
						err = fmt.Errorf("answer %q", msg.Content)
					}
					errs <- err
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				require.NoError(t, err)
			}
			for i, s := range stubs {
				require.EqualValues(t, runs, s.calls.Load(), "%s ran", names[i])
			}
			require.NoError(t, g.Close(context.Background()))
			s := g.Stats()
			require.EqualValues(t, runs*4, s.Checks, "stats %+v", s)
			require.EqualValues(t, runs*4, s.Sent, "stats %+v", s)
			require.Zero(t, s.Dropped, "stats %+v", s)
			require.Zero(t, s.Pending, "stats %+v", s)
		})
	}
}

// A streamable tool is guarded by the middleware too.
func TestMiddlewareGuardsStreamableTools(t *testing.T) {
	e := newEnv(t)
	e.srv.DenyTool("delete_file", "destructive")
	var ran atomic.Int32
	stream := func(name string) tool.BaseTool {
		st, err := utils.InferStreamTool(name, "streams", func(_ context.Context, in fileInput) (*schema.StreamReader[string], error) {
			ran.Add(1)
			return schema.StreamReaderFromArray([]string{"chunk of ", in.Path}), nil
		})
		require.NoError(t, err)
		return st
	}
	g := e.guard(t)
	cfg := modes[0].guard(t, []tool.BaseTool{stream("delete_file"), stream("read_file")}, g, guard.WithDenialAsObservation(nil))
	msg, err := run(context.Background(), t, cfg, g, "delete_file", "read_file")
	want := `done: delete_file=Tool "delete_file" was denied by policy.; read_file=chunk of ` + secretPath
	require.NoError(t, err, "run")
	require.Equal(t, want, msg.Content, "run")
	require.EqualValues(t, 1, ran.Load(), "ran")
	_, err = ateino.WrapTools(context.Background(), []tool.BaseTool{stream("x")}, g)
	require.ErrorIs(t, err, agenttrust.ErrValidation, "WrapTools of a streamable tool")
}

func TestRewrapUsesTheNewGuardOnly(t *testing.T) {
	e := newEnv(t)
	g1, g2 := e.guard(t), e.guard(t)
	inner := &stub{out: "deleted"}
	ctx := context.Background()
	w1, err := ateino.WrapTool(ctx, inner.tool(t, "delete_file"), g1)
	require.NoError(t, err)
	w2, err := ateino.WrapTool(ctx, w1, g2)
	require.NoError(t, err)
	info, err := w2.Info(ctx)
	require.NoError(t, err, "info")
	require.Equal(t, "delete_file", info.Name, "info %+v", info)
	require.Equal(t, "a tool named delete_file", info.Desc, "info %+v", info)
	out, err := w2.InvokableRun(ctx, args)
	require.NoError(t, err, "InvokableRun")
	require.Equal(t, "deleted "+secretPath, out, "InvokableRun")
	require.EqualValues(t, 1, inner.calls.Load(), "ran")
	require.Len(t, e.srv.Checks(), 1, "checks")
	s1, s2 := g1.Stats(), g2.Stats()
	require.Zero(t, s1.Checks, "first guard %+v", s1)
	require.Zero(t, s1.Reported, "first guard %+v", s1)
	require.EqualValues(t, 1, s2.Checks, "second guard %+v", s2)
	require.EqualValues(t, 1, s2.Reported, "second guard %+v", s2)
}

// failingInfo is a tool whose Info fails.
type failingInfo struct{ tool.InvokableTool }

func (failingInfo) Info(context.Context) (*schema.ToolInfo, error) { return nil, errors.New("no info") }

func TestInvalidArgumentsAreErrors(t *testing.T) {
	e := newEnv(t)
	g := e.guard(t)
	ctx := context.Background()
	good := (&stub{}).tool(t, "delete_file")
	var nilTool *failingInfo
	cases := map[string]func() error{
		"nil tool":       func() error { _, err := ateino.WrapTool(ctx, nil, g); return err },
		"typed nil tool": func() error { _, err := ateino.WrapTool(ctx, nilTool, g); return err },
		"nil guard":      func() error { _, err := ateino.WrapTool(ctx, good, nil); return err },
		//lint:ignore SA1012 a nil context is the point
		"nil ctx":             func() error { _, err := ateino.WrapTool(nil, good, g); return err },
		"nil element":         func() error { _, err := ateino.WrapTools(ctx, []tool.BaseTool{good, nil}, g); return err },
		"WrapTools nil guard": func() error { _, err := ateino.WrapTools(ctx, []tool.BaseTool{good}, nil); return err },
		"middleware nil guard": func() error {
			_, err := ateino.Middleware(nil)
			return err
		},
	}
	for name, call := range cases {
		assert.ErrorIs(t, call(), agenttrust.ErrValidation, "%s: want a validation error", name)
	}
	_, err := ateino.WrapTool(ctx, failingInfo{good}, g)
	assert.EqualError(t, err, "no info", "Info failure")
	mw, err := ateino.Middleware(g)
	require.NoError(t, err)
	var ran bool
	next := func(context.Context, *compose.ToolInput) (*compose.ToolOutput, error) {
		ran = true
		return &compose.ToolOutput{}, nil
	}
	_, err = mw.Invokable(next)(ctx, nil)
	assert.ErrorIs(t, err, agenttrust.ErrValidation, "nil tool input")
	assert.False(t, ran, "nil tool input: the tool ran")
	require.Empty(t, e.srv.Checks(), "an invalid call reached the gateway")
	// A handler without a guard does nothing (run attaches NewHandler(nil)).
	_, err = run(ctx, t, compose.ToolsNodeConfig{Tools: []tool.BaseTool{good}}, nil, "delete_file")
	require.NoError(t, err)
}

func TestSummaries(t *testing.T) {
	e := newEnv(t)
	g := e.guard(t)
	for _, m := range modes {
		sum := guard.WithSummarizer(func(tool, in string) string { return tool + " " + in })
		cfg := m.guard(t, []tool.BaseTool{(&stub{}).tool(t, "delete_file")}, g, guard.WithLogInputs(0))
		_, err := run(context.Background(), t, cfg, g, "delete_file")
		require.NoError(t, err, m.name)
		cfg = m.guard(t, []tool.BaseTool{(&stub{}).tool(t, "delete_file")}, g, sum,
			guard.WithActionEffects(map[string]guard.Effect{"delete_file": guard.EffectDestructive}))
		_, err = run(context.Background(), t, cfg, g, "delete_file")
		require.NoError(t, err, m.name)
	}
	c := e.srv.Checks()
	require.Len(t, c, 2*len(modes), "checks %v", c)
	for i := 0; i < len(c); i += 2 {
		require.Equal(t, args, c[i].ActionInputSummary, "checks %v", c)
		require.Equal(t, "delete_file "+args, c[i+1].ActionInputSummary, "checks %v", c)
		require.Equal(t, "destructive", c[i+1].ActionEffect, "checks %v", c)
	}
}

// NewHandler reports tool_start and asks for a flush when the agent's graph
// ends, so events arrive without Flush or Close (the flush interval here is
// an hour).
func TestHandlerFlushesAtRunEnd(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			e := newEnv(t)
			g := e.guard(t, guard.WithFlushInterval(time.Hour))
			inner := &stub{out: "ok"}
			_, err := run(context.Background(), t, m.guard(t, []tool.BaseTool{inner.tool(t, "read_file")}, g), g, "read_file")
			require.NoError(t, err)
			require.EventuallyWithT(t, func(c *assert.CollectT) {
				assert.Len(c, e.srv.TelemetryEvents(), 2, "no flush at the end of the run: %+v", g.Stats())
			}, 5*time.Second, time.Millisecond)
			evs := e.srv.TelemetryEvents()
			require.Equal(t, "tool_start", evs[0].EventType, "events %v", evs)
			require.Equal(t, "read_file", evs[0].ToolName, "events %v", evs)
		})
	}
}
