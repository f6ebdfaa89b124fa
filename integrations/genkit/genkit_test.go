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

func mustWrap(t *testing.T, g *guard.Guard, tools []ai.Tool, opts ...atgenkit.Option) []ai.ToolRef {
	t.Helper()
	refs, err := atgenkit.WrapTools(tools, g, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return refs
}

func deleteTool(s *stub) ai.Tool { return ai.NewTool("delete_file", "deletes a file", s.run) }

func TestAllowedToolRunsAndIsReported(t *testing.T) {
	e := newEnv(t)
	g := e.guard(t)
	inner := &stub{out: "deleted"}
	resp, err := e.generate(context.Background(), mustWrap(t, g, []ai.Tool{deleteTool(inner)}), "delete_file")
	if err != nil || resp.Text() != "done: delete_file=deleted "+secretPath {
		t.Fatalf("generate: %v, %v", resp.Text(), err)
	}
	if n := inner.calls.Load(); n != 1 {
		t.Fatalf("inner ran %d times", n)
	}
	checks := e.srv.Checks()
	if len(checks) != 1 {
		t.Fatalf("checks %v", checks)
	}
	input, _ := json.Marshal(map[string]any{"path": secretPath})
	want := agenttrusttest.CheckRecord{
		ActionName: "delete_file", ActionSource: "api", AgentID: e.agentID, SessionID: g.SessionID(),
		ActionInputSummary: fmt.Sprintf("[%d chars]", len(input)),
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
	if len(evs) != 1 || evs[0].EventType != "tool_end" || evs[0].ToolName != "delete_file" || (evs[0].Success == nil || !*evs[0].Success) {
		t.Fatalf("events %v", evs)
	}
	if ok := evs[0].DurationMs != nil; !ok {
		t.Fatalf("tool_end without duration_ms: %v", evs[0])
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
	if s := g.Stats(); s.Sent != 1 || s.Dropped != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestDeniedToolNeverRuns(t *testing.T) {
	e := newEnv(t)
	e.srv.DenyTool("delete_file", "destructive")
	for _, block := range []bool{true, false} {
		inner := &stub{out: "deleted"}
		g := e.guard(t, guard.WithBlockOnDeny(block))
		_, err := e.generate(context.Background(), mustWrap(t, g, []ai.Tool{deleteTool(inner)}), "delete_file")
		var de *guard.DeniedError
		if !errors.As(err, &de) || de.Reason != "destructive" || de.CheckID == "" || de.GuardTier == "" || de.Tool != "delete_file" {
			t.Fatalf("block=%v: generate error %v", block, err)
		}
		if !strings.Contains(err.Error(), "delete_file") {
			t.Fatalf("message %q", err)
		}
		if n := inner.calls.Load(); n != 0 {
			t.Fatalf("block=%v: denied tool ran %d times", block, n)
		}
		if s := g.Stats(); s.Reported != 0 || s.Denied != 1 {
			t.Fatalf("stats %+v", s)
		}
	}
}

func TestDenialAsObservation(t *testing.T) {
	e := newEnv(t)
	e.srv.DenyTool("delete_file", "destructive")
	inner := &stub{out: "deleted"}
	read := &stub{out: "contents of"}
	tools := []ai.Tool{deleteTool(inner), ai.NewTool("read_file", "reads a file", read.run)}
	resp, err := e.generate(context.Background(), mustWrap(t, e.guard(t), tools, atgenkit.WithDenialAsObservation(nil)), "delete_file", "read_file")
	want := `done: delete_file=Tool "delete_file" was denied by policy.; read_file=contents of ` + secretPath
	if err != nil || resp.Text() != want {
		t.Fatalf("generate: %q, %v", resp.Text(), err)
	}
	if inner.calls.Load() != 0 || read.calls.Load() != 1 {
		t.Fatalf("delete ran %d, read ran %d", inner.calls.Load(), read.calls.Load())
	}
	custom := atgenkit.WithDenialAsObservation(func(d *guard.DeniedError) string { return "no: " + d.Reason })
	resp, err = e.generate(context.Background(), mustWrap(t, e.guard(t), tools[:1], custom), "delete_file")
	if err != nil || resp.Text() != "done: delete_file=no: destructive" {
		t.Fatalf("custom observation: %q, %v", resp.Text(), err)
	}
}

func TestElevationIsAnErrorInBothModes(t *testing.T) {
	e := newEnv(t)
	e.srv.RequireElevation("delete_file")
	for _, opts := range [][]atgenkit.Option{nil, {atgenkit.WithDenialAsObservation(nil)}} {
		inner := &stub{}
		_, err := e.generate(context.Background(), mustWrap(t, e.guard(t), []ai.Tool{deleteTool(inner)}, opts...), "delete_file")
		var ee *guard.ElevationRequiredError
		if !errors.As(err, &ee) || ee.ApprovalID == "" || !errors.Is(err, guard.ErrElevationRequired) {
			t.Fatalf("generate error %v", err)
		}
		if inner.calls.Load() != 0 {
			t.Fatal("tool ran without approval")
		}
	}
}

func TestUnavailableGuardian(t *testing.T) {
	e := newEnv(t)
	e.srv.InjectFault("POST /api/v1/agenttrust/check", agenttrusttest.Fault{Status: 503})
	for _, open := range []bool{true, false} {
		inner := &stub{out: "deleted"}
		g := e.guard(t, guard.WithFailOpen(open), guard.WithCheckTimeout(300*time.Millisecond))
		resp, err := e.generate(context.Background(), mustWrap(t, g, []ai.Tool{deleteTool(inner)}, atgenkit.WithDenialAsObservation(nil)), "delete_file")
		if open {
			if err != nil || inner.calls.Load() != 1 || g.Stats().FailedOpen != 1 || !strings.HasPrefix(resp.Text(), "done: delete_file=deleted") {
				t.Fatalf("fail-open: %v, ran %d, %+v", err, inner.calls.Load(), g.Stats())
			}
			continue
		}
		var ue *guard.UnavailableError
		var ae *agenttrust.AgentTrustError
		if !errors.As(err, &ue) || !errors.As(ue.Cause, &ae) || ae.Status != 503 || inner.calls.Load() != 0 {
			t.Fatalf("fail-closed: %v, ran %d", err, inner.calls.Load())
		}
	}
}

func TestInnerErrorReported(t *testing.T) {
	e := newEnv(t)
	innerErr := &toolFailure{msg: "disk on fire at /secret/location"}
	g := e.guard(t)
	_, err := e.generate(context.Background(), mustWrap(t, g, []ai.Tool{deleteTool(&stub{err: innerErr})}), "delete_file")
	if !errors.Is(err, innerErr) {
		t.Fatalf("generate error %v, want the inner error reachable", err)
	}
	if err := g.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	evs := e.srv.TelemetryEvents()
	if len(evs) != 1 || evs[0].EventType != "tool_error" || (evs[0].Success == nil || *evs[0].Success) {
		t.Fatalf("events %v", evs)
	}
	// Genkit wraps the tool's error; the type reported is the tool's own.
	if evs[0].ErrorType != "*agenttrustgenkit_test.toolFailure" {
		t.Fatalf("error_type %v", evs[0].ErrorType)
	}
	for _, r := range e.srv.Requests() {
		if strings.Contains(string(r.Body), "disk on fire") {
			t.Fatal("error text sent")
		}
	}
}

func TestCallerCancellation(t *testing.T) {
	e := newEnv(t)
	e.srv.InjectFault("POST /api/v1/agenttrust/check", agenttrusttest.Fault{Latency: 10 * time.Second})
	inner := &stub{}
	g := e.guard(t, guard.WithFailOpen(true))
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err := e.generate(ctx, mustWrap(t, g, []ai.Tool{deleteTool(inner)}, atgenkit.WithDenialAsObservation(nil)), "delete_file")
	if !errors.Is(err, context.Canceled) || errors.Is(err, guard.ErrGuardianUnavailable) || inner.calls.Load() != 0 {
		t.Fatalf("err %v, ran %d", err, inner.calls.Load())
	}
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
		if _, err := atgenkit.DefineTool(e.gk, g, n, "a tool", stubs[i].run); err != nil {
			t.Fatal(err)
		}
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
	if n := len(e.srv.Checks()); n != runs*4 {
		t.Fatalf("%d checks", n)
	}
}

func TestDefineToolIsGuardedThroughTheRegistry(t *testing.T) {
	e := newEnv(t)
	e.srv.DenyTool("delete_file", "destructive")
	g := e.guard(t)
	del, read := &stub{}, &stub{out: "contents of"}
	if _, err := atgenkit.DefineTool(e.gk, g, "delete_file", "deletes a file", del.run); err != nil {
		t.Fatal(err)
	}
	if _, err := atgenkit.DefineTool(e.gk, g, "read_file", "reads a file", read.run, atgenkit.WithActionEffect(guard.EffectRead)); err != nil {
		t.Fatal(err)
	}
	// The tools are named only: Generate finds the registered, guarded ones.
	resp, err := e.generate(context.Background(), []ai.ToolRef{ai.ToolName("read_file")}, "read_file")
	if err != nil || resp.Text() != "done: read_file=contents of "+secretPath || read.calls.Load() != 1 {
		t.Fatalf("read_file: %q, %v", resp.Text(), err)
	}
	if c := e.srv.Checks(); len(c) != 1 || c[0].ActionEffect != "read" {
		t.Fatalf("checks %v", c)
	}
	_, err = e.generate(context.Background(), []ai.ToolRef{ai.ToolName("delete_file")}, "delete_file")
	var de *guard.DeniedError
	if !errors.As(err, &de) || del.calls.Load() != 0 {
		t.Fatalf("delete_file: %v, ran %d", err, del.calls.Load())
	}
	if tl := genkit.LookupTool(e.gk, "delete_file"); tl == nil || tl.Definition().Description != "deletes a file" {
		t.Fatal("tool not registered under its name")
	}
}

func TestRewrapUsesTheNewGuardOnly(t *testing.T) {
	e := newEnv(t)
	g1, g2 := e.guard(t), e.guard(t)
	inner := &stub{out: "deleted"}
	w1, err := atgenkit.WrapTool(deleteTool(inner), g1)
	if err != nil {
		t.Fatal(err)
	}
	w2, err := atgenkit.WrapTool(w1, g2)
	if err != nil {
		t.Fatal(err)
	}
	if w2.Name() != "delete_file" || w2.Definition().Description != "deletes a file" || w2.Definition().InputSchema == nil {
		t.Fatalf("definition %+v", w2.Definition())
	}
	if _, err := e.generate(context.Background(), []ai.ToolRef{w2}, "delete_file"); err != nil {
		t.Fatal(err)
	}
	if inner.calls.Load() != 1 || len(e.srv.Checks()) != 1 {
		t.Fatalf("ran %d, %d checks", inner.calls.Load(), len(e.srv.Checks()))
	}
	if s1, s2 := g1.Stats(), g2.Stats(); s1.Checks != 0 || s1.Reported != 0 || s2.Checks != 1 || s2.Reported != 1 {
		t.Fatalf("first guard %+v, second %+v", s1, s2)
	}
	defined, err := atgenkit.DefineTool(e.gk, g1, "read_file", "reads a file", (&stub{}).run)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := atgenkit.WrapTool(defined, g2); !errors.Is(err, agenttrust.ErrValidation) {
		t.Fatalf("wrapping a registered guarded tool: %v", err)
	}
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
		if err := call(); !errors.Is(err, agenttrust.ErrValidation) {
			t.Errorf("%s: %v, want a validation error", name, err)
		}
	}
	if genkit.LookupTool(e.gk, "x") != nil {
		t.Fatal("an invalid DefineTool registered a tool")
	}
}

func TestSummaries(t *testing.T) {
	e := newEnv(t)
	g := e.guard(t)
	input, _ := json.Marshal(map[string]any{"path": secretPath})
	if _, err := e.generate(context.Background(), mustWrap(t, g, []ai.Tool{deleteTool(&stub{})}, atgenkit.WithLogInputs(0)), "delete_file"); err != nil {
		t.Fatal(err)
	}
	sum := atgenkit.WithSummarizer(func(tool, in string) string { return tool + " " + in })
	if _, err := e.generate(context.Background(), mustWrap(t, g, []ai.Tool{deleteTool(&stub{})}, sum, atgenkit.WithActionEffects(map[string]guard.Effect{"delete_file": guard.EffectDestructive})), "delete_file"); err != nil {
		t.Fatal(err)
	}
	c := e.srv.Checks()
	if c[0].ActionInputSummary != string(input) || c[1].ActionInputSummary != "delete_file "+string(input) || c[1].ActionEffect != "destructive" {
		t.Fatalf("checks %v", c)
	}
}

// TrackErrors restores the guard's typed error for any Genkit call; here the
// tool is run directly, as a flow or a custom loop would.
func TestTrackErrors(t *testing.T) {
	e := newEnv(t)
	e.srv.DenyTool("delete_file", "destructive")
	w, err := atgenkit.WrapTool(deleteTool(&stub{}), e.guard(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, restore := atgenkit.TrackErrors(context.Background())
	if restore(nil) != nil {
		t.Fatal("nil error not kept nil")
	}
	plain := errors.New("model failed")
	if restore(plain) != plain {
		t.Fatal("error changed although no tool failed")
	}
	_, runErr := w.RunRaw(ctx, map[string]any{"path": secretPath})
	flat := errors.New("tool failed: " + runErr.Error()) // what Genkit's loop returns
	err = restore(flat)
	var de *guard.DeniedError
	if !errors.As(err, &de) || de.Reason != "destructive" || !errors.Is(err, flat) || err.Error() != flat.Error() {
		t.Fatalf("restored %v", err)
	}
	// Without TrackErrors nothing is recorded.
	_, restore2 := atgenkit.TrackErrors(context.Background())
	if _, err := w.RunRaw(context.Background(), map[string]any{"path": secretPath}); err == nil {
		t.Fatal("denied tool returned no error")
	}
	if restore2(flat) != flat {
		t.Fatal("an error was recorded outside the tracked context")
	}
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
	if err != nil {
		t.Fatal(err)
	}
	plain, err := atgenkit.WrapTool(deleteTool(&stub{}), g)
	if err != nil {
		t.Fatal(err)
	}
	if w.Definition().Metadata["multipart"] != true || plain.Definition().Metadata["multipart"] != false {
		t.Fatalf("multipart flags %v, %v", w.Definition().Metadata, plain.Definition().Metadata)
	}
	resp, err := e.generate(context.Background(), []ai.ToolRef{w}, "snapshot")
	if err != nil || resp.Text() != "done: snapshot=saved" || calls.Load() != 1 {
		t.Fatalf("generate: %q, %v, ran %d", resp.Text(), err, calls.Load())
	}
	var content []*ai.Part
	for _, m := range resp.History() {
		for _, p := range m.Content {
			if p.IsToolResponse() {
				content = p.ToolResponse.Content
			}
		}
	}
	if len(content) != 1 || content[0].Text != "extra "+secretPath {
		t.Fatalf("tool response content %v", content)
	}
}
