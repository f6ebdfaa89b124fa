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
	time.Sleep(time.Millisecond)
	if s.err != nil {
		return "", s.err
	}
	return s.out + " " + in.Path, nil
}

func (s *stub) tool(t *testing.T, name string) tool.InvokableTool {
	t.Helper()
	it, err := utils.InferTool(name, "a tool named "+name, s.run)
	if err != nil {
		t.Fatal(err)
	}
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
	if err != nil {
		t.Fatal(err)
	}
	return &env{srv: srv, client: c, agentID: srv.CreateAgent("eino-agent")}
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

// mode is one of the two ways to guard the tools of a ToolsNode.
type mode struct {
	name  string
	guard func(t *testing.T, tools []tool.BaseTool, g *guard.Guard, opts ...ateino.Option) compose.ToolsNodeConfig
}

var modes = []mode{
	{"middleware", func(t *testing.T, tools []tool.BaseTool, g *guard.Guard, opts ...ateino.Option) compose.ToolsNodeConfig {
		mw, err := ateino.Middleware(g, opts...)
		if err != nil {
			t.Fatal(err)
		}
		return compose.ToolsNodeConfig{Tools: tools, ToolCallMiddlewares: []compose.ToolMiddleware{mw}}
	}},
	{"wrapped", func(t *testing.T, tools []tool.BaseTool, g *guard.Guard, opts ...ateino.Option) compose.ToolsNodeConfig {
		wrapped, err := ateino.WrapTools(context.Background(), tools, g, opts...)
		if err != nil {
			t.Fatal(err)
		}
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
	if err != nil {
		t.Fatal(err)
	}
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
			if err != nil || msg.Content != "done: delete_file=deleted "+secretPath {
				t.Fatalf("run: %v, %v", msg, err)
			}
			if n := inner.calls.Load(); n != 1 {
				t.Fatalf("inner ran %d times", n)
			}
			checks := e.srv.Checks()
			if len(checks) != 1 {
				t.Fatalf("checks %v", checks)
			}
			want := agenttrusttest.CheckRecord{
				ActionName: "delete_file", ActionSource: "api", AgentID: e.agentID, SessionID: g.SessionID(),
				ActionInputSummary: fmt.Sprintf("[%d chars]", len(args)),
			}
			if checks[0] != want {
				t.Errorf("check %+v, want %+v", checks[0], want)
			}
			if checks[0].ActionEffect != "" {
				t.Error("action_effect sent without configuration")
			}
			if err := g.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			evs := e.srv.TelemetryEvents()
			if len(evs) != 2 || evs[0].EventType != "tool_start" || evs[0].ToolName != "delete_file" ||
				evs[1].EventType != "tool_end" || (evs[1].Success == nil || !*evs[1].Success) {
				t.Fatalf("events %v", evs)
			}
			if ok := evs[1].DurationMs != nil; !ok {
				t.Fatalf("tool_end without duration_ms: %v", evs[1])
			}
			for _, b := range e.srv.TelemetryBatches() {
				if b.AgentID != e.agentID || b.SessionID != g.SessionID() {
					t.Fatalf("batch %v", b)
				}
			}
			for _, r := range e.srv.Requests() {
				if strings.Contains(string(r.Body), secretPath) {
					t.Fatalf("tool input sent to %s %s", r.Method, r.Path)
				}
			}
			if s := g.Stats(); s.Sent != 2 || s.Dropped != 0 {
				t.Fatalf("stats %+v", s)
			}
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
				if !errors.As(err, &de) || de.Reason != "destructive" || de.CheckID == "" || de.GuardTier == "" || de.Tool != "delete_file" {
					t.Fatalf("block=%v: run error %v", block, err)
				}
				if n := inner.calls.Load(); n != 0 {
					t.Fatalf("block=%v: denied tool ran %d times", block, n)
				}
				if s := g.Stats(); s.Denied != 1 {
					t.Fatalf("stats %+v", s)
				}
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
			msg, err := run(context.Background(), t, m.guard(t, tools, g, ateino.WithDenialAsObservation(nil)), g, "delete_file", "read_file")
			want := `done: delete_file=Tool "delete_file" was denied by policy.; read_file=contents of ` + secretPath
			if err != nil || msg.Content != want {
				t.Fatalf("run: %v, %v", msg, err)
			}
			if del.calls.Load() != 0 || read.calls.Load() != 1 {
				t.Fatalf("delete ran %d, read ran %d", del.calls.Load(), read.calls.Load())
			}
			custom := ateino.WithDenialAsObservation(func(d *guard.DeniedError) string { return "no: " + d.Reason })
			msg, err = run(context.Background(), t, m.guard(t, tools[:1], g, custom), g, "delete_file")
			if err != nil || msg.Content != "done: delete_file=no: destructive" {
				t.Fatalf("custom observation: %v, %v", msg, err)
			}
		})
	}
}

func TestElevationIsAnErrorInBothModes(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			e := newEnv(t)
			e.srv.RequireElevation("delete_file")
			for _, opts := range [][]ateino.Option{nil, {ateino.WithDenialAsObservation(nil)}} {
				inner := &stub{}
				g := e.guard(t)
				_, err := run(context.Background(), t, m.guard(t, []tool.BaseTool{inner.tool(t, "delete_file")}, g, opts...), g, "delete_file")
				var ee *guard.ElevationRequiredError
				if !errors.As(err, &ee) || ee.ApprovalID == "" {
					t.Fatalf("run error %v", err)
				}
				if inner.calls.Load() != 0 {
					t.Fatal("tool ran without approval")
				}
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
				msg, err := run(context.Background(), t, m.guard(t, []tool.BaseTool{inner.tool(t, "delete_file")}, g, ateino.WithDenialAsObservation(nil)), g, "delete_file")
				if open {
					if err != nil || inner.calls.Load() != 1 || g.Stats().FailedOpen != 1 || !strings.HasPrefix(msg.Content, `done: delete_file=deleted`) {
						t.Fatalf("fail-open: %v, %v, ran %d, %+v", msg, err, inner.calls.Load(), g.Stats())
					}
					continue
				}
				var ue *guard.UnavailableError
				var ae *agenttrust.AgentTrustError
				if !errors.As(err, &ue) || !errors.As(ue.Cause, &ae) || ae.Status != 503 || inner.calls.Load() != 0 {
					t.Fatalf("fail-closed: %v, ran %d", err, inner.calls.Load())
				}
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
			if !errors.Is(err, innerErr) {
				t.Fatalf("run error %v, want the inner error reachable", err)
			}
			if err := g.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			evs := e.srv.TelemetryEvents()
			if len(evs) != 2 || evs[1].EventType != "tool_error" || (evs[1].Success == nil || *evs[1].Success) {
				t.Fatalf("events %v", evs)
			}
			if et := evs[1].ErrorType; et == "" {
				t.Fatalf("no error_type: %v", evs[1])
			}
			for _, r := range e.srv.Requests() {
				if strings.Contains(string(r.Body), "disk on fire") {
					t.Fatal("error text sent")
				}
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
		_, err := run(ctx, t, m.guard(t, []tool.BaseTool{inner.tool(t, "delete_file")}, g, ateino.WithDenialAsObservation(nil)), g, "delete_file")
		if !errors.Is(err, context.Canceled) || errors.Is(err, guard.ErrGuardianUnavailable) || inner.calls.Load() != 0 {
			t.Fatalf("%s: err %v, ran %d", m.name, err, inner.calls.Load())
		}
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
				if err != nil {
					t.Fatal(err)
				}
			}
			for i, s := range stubs {
				if n := s.calls.Load(); n != runs {
					t.Fatalf("%s ran %d times", names[i], n)
				}
			}
			if err := g.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			if s := g.Stats(); s.Checks != runs*4 || s.Sent != runs*4 || s.Dropped != 0 || s.Pending != 0 {
				t.Fatalf("stats %+v", s)
			}
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
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	g := e.guard(t)
	cfg := modes[0].guard(t, []tool.BaseTool{stream("delete_file"), stream("read_file")}, g, ateino.WithDenialAsObservation(nil))
	msg, err := run(context.Background(), t, cfg, g, "delete_file", "read_file")
	want := `done: delete_file=Tool "delete_file" was denied by policy.; read_file=chunk of ` + secretPath
	if err != nil || msg.Content != want || ran.Load() != 1 {
		t.Fatalf("run: %v, %v, ran %d", msg, err, ran.Load())
	}
	if _, err := ateino.WrapTools(context.Background(), []tool.BaseTool{stream("x")}, g); !errors.Is(err, agenttrust.ErrValidation) {
		t.Fatalf("WrapTools of a streamable tool: %v", err)
	}
}

func TestRewrapUsesTheNewGuardOnly(t *testing.T) {
	e := newEnv(t)
	g1, g2 := e.guard(t), e.guard(t)
	inner := &stub{out: "deleted"}
	ctx := context.Background()
	w1, err := ateino.WrapTool(ctx, inner.tool(t, "delete_file"), g1)
	if err != nil {
		t.Fatal(err)
	}
	w2, err := ateino.WrapTool(ctx, w1, g2)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := w2.Info(ctx); err != nil || info.Name != "delete_file" || info.Desc != "a tool named delete_file" {
		t.Fatalf("info %+v, %v", info, err)
	}
	if out, err := w2.InvokableRun(ctx, args); err != nil || out != "deleted "+secretPath {
		t.Fatalf("InvokableRun = %q, %v", out, err)
	}
	if inner.calls.Load() != 1 || len(e.srv.Checks()) != 1 {
		t.Fatalf("ran %d, %d checks", inner.calls.Load(), len(e.srv.Checks()))
	}
	if s1, s2 := g1.Stats(), g2.Stats(); s1.Checks != 0 || s1.Reported != 0 || s2.Checks != 1 || s2.Reported != 1 {
		t.Fatalf("first guard %+v, second %+v", s1, s2)
	}
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
		if err := call(); !errors.Is(err, agenttrust.ErrValidation) {
			t.Errorf("%s: %v, want a validation error", name, err)
		}
	}
	if _, err := ateino.WrapTool(ctx, failingInfo{good}, g); err == nil || err.Error() != "no info" {
		t.Errorf("Info failure: %v", err)
	}
	mw, err := ateino.Middleware(g)
	if err != nil {
		t.Fatal(err)
	}
	var ran bool
	next := func(context.Context, *compose.ToolInput) (*compose.ToolOutput, error) {
		ran = true
		return &compose.ToolOutput{}, nil
	}
	if _, err := mw.Invokable(next)(ctx, nil); !errors.Is(err, agenttrust.ErrValidation) || ran {
		t.Errorf("nil tool input: %v, ran %v", err, ran)
	}
	if len(e.srv.Checks()) != 0 {
		t.Fatal("an invalid call reached the gateway")
	}
	// A handler without a guard does nothing (run attaches NewHandler(nil)).
	if _, err := run(ctx, t, compose.ToolsNodeConfig{Tools: []tool.BaseTool{good}}, nil, "delete_file"); err != nil {
		t.Fatal(err)
	}
}

func TestSummaries(t *testing.T) {
	e := newEnv(t)
	g := e.guard(t)
	for _, m := range modes {
		sum := ateino.WithSummarizer(func(tool, in string) string { return tool + " " + in })
		cfg := m.guard(t, []tool.BaseTool{(&stub{}).tool(t, "delete_file")}, g, ateino.WithLogInputs(0))
		if _, err := run(context.Background(), t, cfg, g, "delete_file"); err != nil {
			t.Fatal(err)
		}
		cfg = m.guard(t, []tool.BaseTool{(&stub{}).tool(t, "delete_file")}, g, sum,
			ateino.WithActionEffects(map[string]guard.Effect{"delete_file": guard.EffectDestructive}))
		if _, err := run(context.Background(), t, cfg, g, "delete_file"); err != nil {
			t.Fatal(err)
		}
	}
	c := e.srv.Checks()
	for i := 0; i < len(c); i += 2 {
		if c[i].ActionInputSummary != args || c[i+1].ActionInputSummary != "delete_file "+args || c[i+1].ActionEffect != "destructive" {
			t.Fatalf("checks %v", c)
		}
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
			if _, err := run(context.Background(), t, m.guard(t, []tool.BaseTool{inner.tool(t, "read_file")}, g), g, "read_file"); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(5 * time.Second)
			for len(e.srv.TelemetryEvents()) != 2 {
				if time.Now().After(deadline) {
					t.Fatalf("no flush at the end of the run: %+v", g.Stats())
				}
				time.Sleep(time.Millisecond)
			}
			if evs := e.srv.TelemetryEvents(); evs[0].EventType != "tool_start" || evs[0].ToolName != "read_file" {
				t.Fatalf("events %v", evs)
			}
		})
	}
}
