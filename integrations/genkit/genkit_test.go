package agenttrustgenkit_test

import (
	"context"
	"encoding/json"
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
	atgenkit "github.com/agenttrustid/agenttrust-go/integrations/genkit"
	"github.com/firebase/genkit/go/ai"
	"github.com/firebase/genkit/go/genkit"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const secretPath = "/etc/passwd"

type fileInput struct {
	Path string `json:"path"`
}

// stub is a tool body that counts its calls and returns a scripted result.
type stub struct {
	calls atomic.Int32
	out   string
	err   error
}

func (s *stub) run(_ *ai.ToolContext, in fileInput) (string, error) {
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

// toolFailure is an inner tool's own error type.
type toolFailure struct{ msg string }

func (e *toolFailure) Error() string { return e.msg }

type env struct {
	srv     *agenttrusttest.Server
	client  *agenttrust.Client
	agentID string
	gk      *genkit.Genkit
}

func newEnv(t *testing.T) *env {
	t.Helper()
	srv := agenttrusttest.NewTestServer(t, agenttrusttest.WithSplitListeners())
	// genkit.Init watches for signals until its context ends.
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return &env{srv: srv, client: clientFor(t, srv.URL(), srv.AuthURL(), srv.AuditURL(), srv.APIKey()),
		agentID: srv.CreateAgent("genkit-agent"), gk: genkit.Init(ctx)}
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

var modelCount atomic.Int32

// scriptedModel defines a model that, in its first turn, requests every
// tool of calls (in parallel, as one turn) and, once the tool responses
// are in, answers "done:" followed by each response as name=output.
func (e *env) scriptedModel(calls ...string) ai.Model {
	name := fmt.Sprintf("test/scripted-%d", modelCount.Add(1))
	return genkit.DefineModel(e.gk, name, &ai.ModelOptions{Supports: &ai.ModelSupports{Tools: true, Multiturn: true}},
		func(_ context.Context, req *ai.ModelRequest, _ ai.ModelStreamCallback) (*ai.ModelResponse, error) {
			var answers []string
			for _, m := range req.Messages {
				if m.Role != ai.RoleTool {
					continue
				}
				for _, p := range m.Content {
					if p.IsToolResponse() {
						answers = append(answers, fmt.Sprintf("%s=%v", p.ToolResponse.Name, p.ToolResponse.Output))
					}
				}
			}
			if answers != nil {
				sort.Strings(answers)
				return &ai.ModelResponse{Request: req, Message: ai.NewModelTextMessage("done: " + strings.Join(answers, "; "))}, nil
			}
			parts := make([]*ai.Part, len(calls))
			for i, c := range calls {
				parts[i] = ai.NewToolRequestPart(&ai.ToolRequest{Name: c, Ref: fmt.Sprint(i), Input: map[string]any{"path": secretPath}})
			}
			return &ai.ModelResponse{Request: req, Message: &ai.Message{Role: ai.RoleModel, Content: parts}}, nil
		})
}

// generate runs Genkit's generate loop with the scripted model asking for
// calls, and the tools given.
func (e *env) generate(ctx context.Context, tools []ai.ToolRef, calls ...string) (*ai.ModelResponse, error) {
	return atgenkit.Generate(ctx, e.gk, ai.WithModel(e.scriptedModel(calls...)), ai.WithPrompt("clean up"),
		ai.WithTools(tools...), ai.WithMaxTurns(3))
}

func mustWrap(t *testing.T, g *guard.Guard, tools []ai.Tool, opts ...guard.ToolOption) []ai.ToolRef {
	t.Helper()
	refs, err := atgenkit.WrapTools(tools, g, opts...)
	require.NoError(t, err)
	return refs
}

func deleteTool(s *stub) ai.Tool { return ai.NewTool("delete_file", "deletes a file", s.run) }

func TestAllowedToolRunsAndIsReported(t *testing.T) {
	e := newEnv(t)
	g := e.guard(t)
	inner := &stub{out: "deleted"}
	resp, err := e.generate(context.Background(), mustWrap(t, g, []ai.Tool{deleteTool(inner)}), "delete_file")
	require.NoError(t, err, "generate")
	require.Equal(t, "done: delete_file=deleted "+secretPath, resp.Text(), "generate")
	require.EqualValues(t, 1, inner.calls.Load(), "inner ran")
	checks := e.srv.Checks()
	require.Len(t, checks, 1)
	input, _ := json.Marshal(map[string]any{"path": secretPath})
	want := agenttrusttest.CheckRecord{
		ActionName: "delete_file", ActionSource: "api", AgentID: e.agentID, SessionID: g.SessionID(),
		ActionInputSummary: fmt.Sprintf("[%d chars]", len(input)),
	}
	assert.Equal(t, want, checks[0], "check")
	assert.Empty(t, checks[0].ActionEffect, "action_effect sent without configuration")
	require.NoError(t, g.Close(context.Background()))
	evs := e.srv.TelemetryEvents()
	require.Len(t, evs, 1, "events %v", evs)
	require.Equal(t, "tool_end", evs[0].EventType, "events %v", evs)
	require.Equal(t, "delete_file", evs[0].ToolName, "events %v", evs)
	require.NotNil(t, evs[0].Success, "events %v", evs)
	require.True(t, *evs[0].Success, "events %v", evs)
	require.NotNil(t, evs[0].DurationMs, "tool_end without duration_ms: %v", evs[0])
	for _, b := range e.srv.TelemetryBatches() {
		require.Equal(t, e.agentID, b.AgentID, "batch %v", b)
		require.Equal(t, g.SessionID(), b.SessionID, "batch %v", b)
	}
	for _, r := range e.srv.Requests() {
		require.NotContains(t, string(r.Body), secretPath, "tool input sent to %s %s", r.Method, r.Path)
	}
	s := g.Stats()
	require.EqualValues(t, 1, s.Sent, "stats %+v", s)
	require.Zero(t, s.Dropped, "stats %+v", s)
}

func TestDeniedToolNeverRuns(t *testing.T) {
	e := newEnv(t)
	e.srv.DenyTool("delete_file", "destructive")
	for _, block := range []bool{true, false} {
		inner := &stub{out: "deleted"}
		g := e.guard(t, guard.WithBlockOnDeny(block))
		_, err := e.generate(context.Background(), mustWrap(t, g, []ai.Tool{deleteTool(inner)}), "delete_file")
		var de *guard.DeniedError
		require.ErrorAs(t, err, &de, "block=%v", block)
		require.Equal(t, "destructive", de.Reason, "block=%v", block)
		require.NotEmpty(t, de.CheckID, "block=%v", block)
		require.NotEmpty(t, de.GuardTier, "block=%v", block)
		require.Equal(t, "delete_file", de.Tool, "block=%v", block)
		require.Contains(t, err.Error(), "delete_file", "message")
		require.Zero(t, inner.calls.Load(), "block=%v: denied tool ran", block)
		s := g.Stats()
		require.Zero(t, s.Reported, "stats %+v", s)
		require.EqualValues(t, 1, s.Denied, "stats %+v", s)
	}
}

func TestDenialAsObservation(t *testing.T) {
	e := newEnv(t)
	e.srv.DenyTool("delete_file", "destructive")
	inner := &stub{out: "deleted"}
	read := &stub{out: "contents of"}
	tools := []ai.Tool{deleteTool(inner), ai.NewTool("read_file", "reads a file", read.run)}
	resp, err := e.generate(context.Background(), mustWrap(t, e.guard(t), tools, guard.WithDenialAsObservation(nil)), "delete_file", "read_file")
	want := `done: delete_file=Tool "delete_file" was denied by policy.; read_file=contents of ` + secretPath
	require.NoError(t, err, "generate")
	require.Equal(t, want, resp.Text(), "generate")
	require.Zero(t, inner.calls.Load(), "delete ran")
	require.EqualValues(t, 1, read.calls.Load(), "read ran")
	custom := guard.WithDenialAsObservation(func(d *guard.DeniedError) string { return "no: " + d.Reason })
	resp, err = e.generate(context.Background(), mustWrap(t, e.guard(t), tools[:1], custom), "delete_file")
	require.NoError(t, err, "custom observation")
	require.Equal(t, "done: delete_file=no: destructive", resp.Text(), "custom observation")
}

func TestElevationIsAnErrorInBothModes(t *testing.T) {
	e := newEnv(t)
	e.srv.RequireElevation("delete_file")
	for _, opts := range [][]guard.ToolOption{nil, {guard.WithDenialAsObservation(nil)}} {
		inner := &stub{}
		_, err := e.generate(context.Background(), mustWrap(t, e.guard(t), []ai.Tool{deleteTool(inner)}, opts...), "delete_file")
		var ee *guard.ElevationRequiredError
		require.ErrorAs(t, err, &ee, "generate error")
		require.NotEmpty(t, ee.ApprovalID, "generate error %v", err)
		require.ErrorIs(t, err, guard.ErrElevationRequired, "generate error")
		require.Zero(t, inner.calls.Load(), "tool ran without approval")
	}
}

func TestUnavailableGuardian(t *testing.T) {
	e := newEnv(t)
	e.srv.InjectFault("POST /api/v1/agenttrust/check", agenttrusttest.Fault{Status: 503})
	for _, open := range []bool{true, false} {
		inner := &stub{out: "deleted"}
		g := e.guard(t, guard.WithFailOpen(open), guard.WithCheckTimeout(300*time.Millisecond))
		resp, err := e.generate(context.Background(), mustWrap(t, g, []ai.Tool{deleteTool(inner)}, guard.WithDenialAsObservation(nil)), "delete_file")
		if open {
			require.NoError(t, err, "fail-open")
			require.EqualValues(t, 1, inner.calls.Load(), "fail-open: tool runs")
			require.EqualValues(t, 1, g.Stats().FailedOpen, "fail-open: %+v", g.Stats())
			require.True(t, strings.HasPrefix(resp.Text(), "done: delete_file=deleted"), "fail-open: answer %q", resp.Text())
			continue
		}
		var ue *guard.UnavailableError
		var ae *agenttrust.AgentTrustError
		require.ErrorAs(t, err, &ue, "fail-closed")
		require.ErrorAs(t, ue.Cause, &ae, "fail-closed")
		require.Equal(t, 503, ae.Status, "fail-closed: %v", err)
		require.Zero(t, inner.calls.Load(), "fail-closed: tool ran")
	}
}

func TestInnerErrorReported(t *testing.T) {
	e := newEnv(t)
	innerErr := &toolFailure{msg: "disk on fire at /secret/location"}
	g := e.guard(t)
	_, err := e.generate(context.Background(), mustWrap(t, g, []ai.Tool{deleteTool(&stub{err: innerErr})}), "delete_file")
	require.ErrorIs(t, err, innerErr, "want the inner error reachable")
	require.NoError(t, g.Close(context.Background()))
	evs := e.srv.TelemetryEvents()
	require.Len(t, evs, 1, "events %v", evs)
	require.Equal(t, "tool_error", evs[0].EventType, "events %v", evs)
	require.NotNil(t, evs[0].Success, "events %v", evs)
	require.False(t, *evs[0].Success, "events %v", evs)
	// Genkit wraps the tool's error; the type reported is the tool's own.
	require.Equal(t, "*agenttrustgenkit_test.toolFailure", evs[0].ErrorType, "error_type")
	for _, r := range e.srv.Requests() {
		require.NotContains(t, string(r.Body), "disk on fire", "error text sent")
	}
}

func TestCallerCancellation(t *testing.T) {
	e := newEnv(t)
	e.srv.InjectFault("POST /api/v1/agenttrust/check", agenttrusttest.Fault{Latency: 10 * time.Second})
	inner := &stub{}
	g := e.guard(t, guard.WithFailOpen(true))
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err := e.generate(ctx, mustWrap(t, g, []ai.Tool{deleteTool(inner)}, guard.WithDenialAsObservation(nil)), "delete_file")
	require.ErrorIs(t, err, context.Canceled)
	require.NotErrorIs(t, err, guard.ErrGuardianUnavailable)
	require.Zero(t, inner.calls.Load(), "tool ran")
}

// Genkit registers a dynamic tool (ai.NewTool, WrapTool) into each
// Generate call that receives it, which races when the same tool value is
// passed to concurrent calls. So each concurrent run here either names the
// registered tools of DefineTool or wraps its own dynamic tools; all share
// one Guard, and each turn runs four tool calls in parallel.
func TestConcurrentToolCallsShareOneGuard(t *testing.T) {
	e := newEnv(t)
	g := e.guard(t, guard.WithBatchSize(5))
	names := []string{"t0", "t1", "t2", "t3"}
	stubs := make([]*stub, len(names))
	registered := make([]ai.ToolRef, len(names))
	for i, n := range names {
		stubs[i] = &stub{out: "ok"}
		_, err := atgenkit.DefineTool(e.gk, g, n, "a tool", stubs[i].run)
		require.NoError(t, err)
		registered[i] = ai.ToolName(n)
	}
	dynamic := func() []ai.ToolRef {
		tools := make([]ai.Tool, len(names))
		for i, n := range names {
			tools[i] = ai.NewTool(n+"_dyn", "a tool", stubs[i].run)
		}
		return mustWrap(t, g, tools)
	}
	const runs = 6
	var wg sync.WaitGroup
	errs := make(chan error, runs)
	for i := 0; i < runs; i++ {
		refs, calls, prefix := registered, names, "done: t0=ok"
		if i%2 == 1 {
			refs, calls, prefix = dynamic(), []string{"t0_dyn", "t1_dyn", "t2_dyn", "t3_dyn"}, "done: t0_dyn=ok"
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := e.generate(context.Background(), refs, calls...)
			if err == nil && !strings.HasPrefix(resp.Text(), prefix) {
				err = fmt.Errorf("answer %q", resp.Text())
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
	require.Len(t, e.srv.Checks(), runs*4, "checks")
}

func TestDefineToolIsGuardedThroughTheRegistry(t *testing.T) {
	e := newEnv(t)
	e.srv.DenyTool("delete_file", "destructive")
	g := e.guard(t)
	del, read := &stub{}, &stub{out: "contents of"}
	_, err := atgenkit.DefineTool(e.gk, g, "delete_file", "deletes a file", del.run)
	require.NoError(t, err)
	_, err = atgenkit.DefineTool(e.gk, g, "read_file", "reads a file", read.run, guard.WithActionEffect(guard.EffectRead))
	require.NoError(t, err)
	// The tools are named only: Generate finds the registered, guarded ones.
	resp, err := e.generate(context.Background(), []ai.ToolRef{ai.ToolName("read_file")}, "read_file")
	require.NoError(t, err, "read_file")
	require.Equal(t, "done: read_file=contents of "+secretPath, resp.Text(), "read_file")
	require.EqualValues(t, 1, read.calls.Load(), "read_file ran")
	c := e.srv.Checks()
	require.Len(t, c, 1, "checks %v", c)
	require.Equal(t, "read", c[0].ActionEffect, "checks %v", c)
	_, err = e.generate(context.Background(), []ai.ToolRef{ai.ToolName("delete_file")}, "delete_file")
	var de *guard.DeniedError
	require.ErrorAs(t, err, &de, "delete_file")
	require.Zero(t, del.calls.Load(), "delete_file ran")
	tl := genkit.LookupTool(e.gk, "delete_file")
	require.NotNil(t, tl, "tool not registered under its name")
	require.Equal(t, "deletes a file", tl.Definition().Description, "tool not registered under its name")
}

func TestRewrapUsesTheNewGuardOnly(t *testing.T) {
	e := newEnv(t)
	g1, g2 := e.guard(t), e.guard(t)
	inner := &stub{out: "deleted"}
	w1, err := atgenkit.WrapTool(deleteTool(inner), g1)
	require.NoError(t, err)
	w2, err := atgenkit.WrapTool(w1, g2)
	require.NoError(t, err)
	require.Equal(t, "delete_file", w2.Name(), "definition %+v", w2.Definition())
	require.Equal(t, "deletes a file", w2.Definition().Description, "definition %+v", w2.Definition())
	require.NotNil(t, w2.Definition().InputSchema, "definition %+v", w2.Definition())
	_, err = e.generate(context.Background(), []ai.ToolRef{w2}, "delete_file")
	require.NoError(t, err)
	require.EqualValues(t, 1, inner.calls.Load(), "ran")
	require.Len(t, e.srv.Checks(), 1, "checks")
	s1, s2 := g1.Stats(), g2.Stats()
	require.Zero(t, s1.Checks, "first guard %+v", s1)
	require.Zero(t, s1.Reported, "first guard %+v", s1)
	require.EqualValues(t, 1, s2.Checks, "second guard %+v", s2)
	require.EqualValues(t, 1, s2.Reported, "second guard %+v", s2)
	defined, err := atgenkit.DefineTool(e.gk, g1, "read_file", "reads a file", (&stub{}).run)
	require.NoError(t, err)
	_, err = atgenkit.WrapTool(defined, g2)
	require.ErrorIs(t, err, agenttrust.ErrValidation, "wrapping a registered guarded tool")
}

func TestInvalidArgumentsAreErrors(t *testing.T) {
	e := newEnv(t)
	g := e.guard(t)
	var nilDef *ai.ToolDef[fileInput, string]
	fn := (&stub{}).run
	cases := map[string]func() error{
		"nil tool":       func() error { _, err := atgenkit.WrapTool(nil, g); return err },
		"typed nil tool": func() error { _, err := atgenkit.WrapTool(nilDef, g); return err },
		"nil guard":      func() error { _, err := atgenkit.WrapTool(deleteTool(&stub{}), nil); return err },
		"nil element":    func() error { _, err := atgenkit.WrapTools([]ai.Tool{deleteTool(&stub{}), nil}, g); return err },
		"WrapTools nil guard": func() error {
			_, err := atgenkit.WrapTools([]ai.Tool{deleteTool(&stub{})}, nil)
			return err
		},
		"DefineTool nil genkit": func() error { _, err := atgenkit.DefineTool(nil, g, "x", "", fn); return err },
		"DefineTool nil guard":  func() error { _, err := atgenkit.DefineTool(e.gk, nil, "x", "", fn); return err },
		"DefineTool nil fn": func() error {
			_, err := atgenkit.DefineTool[fileInput, string](e.gk, g, "x", "", nil)
			return err
		},
		"DefineTool empty name": func() error { _, err := atgenkit.DefineTool(e.gk, g, "", "", fn); return err },
		"Generate nil genkit":   func() error { _, err := atgenkit.Generate(context.Background(), nil); return err },
	}
	for name, call := range cases {
		assert.ErrorIs(t, call(), agenttrust.ErrValidation, "%s: want a validation error", name)
	}
	require.Nil(t, genkit.LookupTool(e.gk, "x"), "an invalid DefineTool registered a tool")
}

func TestSummaries(t *testing.T) {
	e := newEnv(t)
	g := e.guard(t)
	input, _ := json.Marshal(map[string]any{"path": secretPath})
	_, err := e.generate(context.Background(), mustWrap(t, g, []ai.Tool{deleteTool(&stub{})}, guard.WithLogInputs(0)), "delete_file")
	require.NoError(t, err)
	sum := guard.WithSummarizer(func(tool, in string) string { return tool + " " + in })
	_, err = e.generate(context.Background(), mustWrap(t, g, []ai.Tool{deleteTool(&stub{})}, sum, guard.WithActionEffects(map[string]guard.Effect{"delete_file": guard.EffectDestructive})), "delete_file")
	require.NoError(t, err)
	c := e.srv.Checks()
	require.Len(t, c, 2, "checks %v", c)
	require.Equal(t, string(input), c[0].ActionInputSummary, "checks %v", c)
	require.Equal(t, "delete_file "+string(input), c[1].ActionInputSummary, "checks %v", c)
	require.Equal(t, "destructive", c[1].ActionEffect, "checks %v", c)
}

// TrackErrors restores the guard's typed error for any Genkit call; here the
// tool is run directly, as a flow or a custom loop would.
func TestTrackErrors(t *testing.T) {
	e := newEnv(t)
	e.srv.DenyTool("delete_file", "destructive")
	w, err := atgenkit.WrapTool(deleteTool(&stub{}), e.guard(t))
	require.NoError(t, err)
	ctx, restore := atgenkit.TrackErrors(context.Background())
	require.NoError(t, restore(nil), "nil error not kept nil")
	plain := errors.New("model failed")
	require.Same(t, plain, restore(plain), "error changed although no tool failed")
	_, runErr := w.RunRaw(ctx, map[string]any{"path": secretPath})
	require.Error(t, runErr, "denied tool returned no error")
	flat := errors.New("tool failed: " + runErr.Error()) // what Genkit's loop returns
	err = restore(flat)
	var de *guard.DeniedError
	require.ErrorAs(t, err, &de, "restored")
	require.Equal(t, "destructive", de.Reason, "restored %v", err)
	require.ErrorIs(t, err, flat, "restored")
	require.EqualError(t, err, flat.Error(), "restored")
	// Without TrackErrors nothing is recorded.
	_, restore2 := atgenkit.TrackErrors(context.Background())
	_, err = w.RunRaw(context.Background(), map[string]any{"path": secretPath})
	require.Error(t, err, "denied tool returned no error")
	require.Same(t, flat, restore2(flat), "an error was recorded outside the tracked context")
}

func TestMultipartToolsStayMultipart(t *testing.T) {
	e := newEnv(t)
	g := e.guard(t)
	var calls atomic.Int32
	snap := ai.NewMultipartTool("snapshot", "snapshots a file", func(_ *ai.ToolContext, in fileInput) (*ai.MultipartToolResponse, error) {
		calls.Add(1)
		return &ai.MultipartToolResponse{Output: "saved", Content: []*ai.Part{ai.NewTextPart("extra " + in.Path)}}, nil
	})
	w, err := atgenkit.WrapTool(snap, g)
	require.NoError(t, err)
	plain, err := atgenkit.WrapTool(deleteTool(&stub{}), g)
	require.NoError(t, err)
	require.Equal(t, true, w.Definition().Metadata["multipart"], "multipart flag %v", w.Definition().Metadata)
	require.Equal(t, false, plain.Definition().Metadata["multipart"], "multipart flag %v", plain.Definition().Metadata)
	resp, err := e.generate(context.Background(), []ai.ToolRef{w}, "snapshot")
	require.NoError(t, err, "generate")
	require.Equal(t, "done: snapshot=saved", resp.Text(), "generate")
	require.EqualValues(t, 1, calls.Load(), "ran")
	var content []*ai.Part
	for _, m := range resp.History() {
		for _, p := range m.Content {
			if p.IsToolResponse() {
				content = p.ToolResponse.Content
			}
		}
	}
	require.Len(t, content, 1, "tool response content %v", content)
	require.Equal(t, "extra "+secretPath, content[0].Text, "tool response content %v", content)
}
