package agenttrustotel_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	agenttrust "github.com/agenttrustid/agenttrust-go"
	"github.com/agenttrustid/agenttrust-go/agenttrusttest"
	"github.com/agenttrustid/agenttrust-go/guard"
	agenttrustotel "github.com/agenttrustid/agenttrust-go/integrations/otel"
	"github.com/agenttrustid/agenttrust-go/tokenauth"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

const checkTmpl = "/api/v1/agenttrust/check"

// checkSpans returns the two spans of one guard check, failing unless they
// are exactly a check span with its API call as only child.
func checkSpans(t *testing.T, h *harness) (check, call sdktrace.ReadOnlySpan) {
	t.Helper()
	spans := h.ended()
	if len(spans) != 2 {
		var names []string
		for _, s := range spans {
			names = append(names, s.Name())
		}
		t.Fatalf("spans %q, want the call and the check", names)
	}
	call, check = spans[0], spans[1]
	if check.Name() != agenttrustotel.SpanCheck || check.SpanKind() != trace.SpanKindInternal {
		t.Errorf("check span %q kind %v", check.Name(), check.SpanKind())
	}
	if call.Name() != "agenttrust.actions.check" || call.SpanKind() != trace.SpanKindClient {
		t.Errorf("call span %q kind %v", call.Name(), call.SpanKind())
	}
	if call.Parent().SpanID() != check.SpanContext().SpanID() || call.SpanContext().TraceID() != check.SpanContext().TraceID() {
		t.Errorf("the call is not a child of the check")
	}
	return check, call
}

// attempts renders a span's events.
func events(s sdktrace.ReadOnlySpan) []string {
	var out []string
	for _, e := range s.Events() {
		out = append(out, e.Name+render(attrs(e.Attributes)))
	}
	return out
}

func sameStrings(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("%s:\n got %q\nwant %q", what, got, want)
	}
}

func attempt(n, status int, errType string) string {
	m := map[string]string{"agenttrust.attempt": fmt.Sprint(n)}
	if status != 0 {
		m["http.response.status_code"] = fmt.Sprint(status)
	}
	if errType != "" {
		m["error.type"] = errType
	}
	return agenttrustotel.EventAttemptFailed + render(m)
}

func TestDecisions(t *testing.T) {
	cases := []struct {
		name, tool, outcome string
		setup               func(*agenttrusttest.Server)
		wantErr             any
	}{
		{"allowed", "read_file", "allowed", func(*agenttrusttest.Server) {}, nil},
		{"denied", "delete_file", "denied", func(s *agenttrusttest.Server) { s.DenyTool("delete_file", "no deletes") },
			new(*guard.DeniedError)},
		{"elevation", "send_email", "elevation", func(s *agenttrusttest.Server) { s.RequireElevation("send_email") },
			new(*guard.ElevationRequiredError)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			tc.setup(h.srv)
			agentID := h.srv.CreateAgent("bot")
			g, err := guard.New(h.client, agentID)
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close(context.Background())
			d, err := g.Check(ctxT(t), tc.tool, "private input")
			if tc.wantErr == nil && err != nil || tc.wantErr != nil && !errors.As(err, tc.wantErr) {
				t.Fatalf("Check = %+v, %v", d, err)
			}
			if d.CheckID == "" || d.GuardTier == "" {
				t.Fatalf("decision without id or tier: %+v", d)
			}
			check, call := checkSpans(t, h)
			sameMap(t, "check span", attrs(check.Attributes()), map[string]string{
				"agenttrust.tool.name":     tc.tool,
				"agenttrust.agent.id":      agentID,
				"agenttrust.check.outcome": tc.outcome,
				"agenttrust.guard.tier":    d.GuardTier,
				"agenttrust.check.id":      d.CheckID,
			})
			if check.Status().Code != codes.Unset {
				t.Errorf("check span status %v", check.Status())
			}
			sameMap(t, "call span", attrs(call.Attributes()),
				with(requestAttrs(t, h.srv.AuthURL(), "POST", "actions.check", checkTmpl), "http.response.status_code", "200"))
			sameStrings(t, "call events", events(call), nil)
			sameMap(t, "metrics", h.points(t), map[string]string{
				"agenttrust.guard.check.duration{agenttrust.check.outcome=" + tc.outcome + "}": "count=1",
				"agenttrust.guard.decisions{agenttrust.check.outcome=" + tc.outcome + "}":      "1",
				requestMetric(t, h.srv.AuthURL(), "POST", "actions.check", checkTmpl, 200, ""): "count=1",
			})
		})
	}
}

// TestFailOpen: the Guardian answers 503 to all three attempts; the guard
// fails open. A check retries until its deadline when the policy has a
// backoff; without one, MaxRetries bounds it, which fixes the attempts.
func TestFailOpen(t *testing.T) {
	h := newHarness(t)
	h.srv.InjectFault("POST "+checkTmpl, agenttrusttest.Fault{Status: 503})
	agentID := h.srv.CreateAgent("bot")
	c := h.newClient(t, agenttrust.WithObserver(h.obs), agenttrust.WithRetryPolicy(agenttrust.RetryPolicy{MaxRetries: 2}))
	g, err := guard.New(c, agentID, guard.WithFailOpen(true))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close(context.Background())
	if d, err := g.Check(ctxT(t), "read_file", ""); err != nil || !d.FailedOpen {
		t.Fatalf("Check = %+v, %v", d, err)
	}
	check, call := checkSpans(t, h)
	sameMap(t, "check span", attrs(check.Attributes()), map[string]string{
		"agenttrust.tool.name":     "read_file",
		"agenttrust.agent.id":      agentID,
		"agenttrust.check.outcome": "failed_open",
		"error.type":               "503",
	})
	if check.Status().Code != codes.Unset {
		t.Errorf("check span status %v: failing open is the configured behaviour", check.Status())
	}
	sameMap(t, "call span", attrs(call.Attributes()), with(requestAttrs(t, h.srv.AuthURL(), "POST", "actions.check", checkTmpl),
		"http.response.status_code", "503", "error.type", "503", "http.request.resend_count", "2"))
	if call.Status().Code != codes.Error || call.Status().Description != "503" {
		t.Errorf("call span status %+v", call.Status())
	}
	sameStrings(t, "call events", events(call), []string{attempt(1, 503, "503"), attempt(2, 503, "503"), attempt(3, 503, "503")})
	sameMap(t, "metrics", h.points(t), map[string]string{
		"agenttrust.guard.check.duration{agenttrust.check.outcome=failed_open}":           "count=1",
		"agenttrust.guard.decisions{agenttrust.check.outcome=failed_open}":                "1",
		"agenttrust.guard.failed_open{error.type=503}":                                    "1",
		requestMetric(t, h.srv.AuthURL(), "POST", "actions.check", checkTmpl, 503, "503"): "count=1",
	})
}

// TestFailClosed: the Guardian does not answer within the check timeout;
// the guard fails closed.
func TestFailClosed(t *testing.T) {
	h := newHarness(t)
	h.srv.InjectFault("POST "+checkTmpl, agenttrusttest.Fault{Latency: time.Minute})
	agentID := h.srv.CreateAgent("bot")
	g, err := guard.New(h.client, agentID, guard.WithCheckTimeout(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close(context.Background())
	var ue *guard.UnavailableError
	if _, err := g.Check(ctxT(t), "read_file", ""); !errors.As(err, &ue) {
		t.Fatalf("Check error %v", err)
	}
	check, call := checkSpans(t, h)
	sameMap(t, "check span", attrs(check.Attributes()), map[string]string{
		"agenttrust.tool.name":     "read_file",
		"agenttrust.agent.id":      agentID,
		"agenttrust.check.outcome": "unavailable",
		"error.type":               "timeout",
	})
	if check.Status().Code != codes.Error || check.Status().Description != "unavailable" {
		t.Errorf("check span status %+v", check.Status())
	}
	sameMap(t, "call span", attrs(call.Attributes()), with(requestAttrs(t, h.srv.AuthURL(), "POST", "actions.check", checkTmpl),
		"error.type", "timeout"))
	sameStrings(t, "call events", events(call), []string{attempt(1, 0, "timeout")})
	sameMap(t, "metrics", h.points(t), map[string]string{
		"agenttrust.guard.check.duration{agenttrust.check.outcome=unavailable}":             "count=1",
		"agenttrust.guard.decisions{agenttrust.check.outcome=unavailable}":                  "1",
		requestMetric(t, h.srv.AuthURL(), "POST", "actions.check", checkTmpl, 0, "timeout"): "count=1",
	})
}

// TestTraceContextPropagated: the fake gateway receives a traceparent naming
// the call's span, in the trace of the caller's span.
func TestTraceContextPropagated(t *testing.T) {
	h := newHarness(t)
	h.srv.InjectFault("POST "+checkTmpl, agenttrusttest.Fault{Status: 503, Times: 1})
	agentID := h.srv.CreateAgent("bot")
	g, err := guard.New(h.client, agentID)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close(context.Background())
	ctx, step := h.tp.Tracer("agent").Start(ctxT(t), "agent.step")
	if _, err := g.Check(ctx, "read_file", ""); err != nil {
		t.Fatal(err)
	}
	step.End()
	spans := h.ended()
	if len(spans) != 3 {
		t.Fatalf("%d spans, want call, check and step", len(spans))
	}
	call, check := spans[0], spans[1]
	if check.Parent().SpanID() != step.SpanContext().SpanID() {
		t.Error("the check span is not a child of the caller's span")
	}
	// The retried call: one failed attempt, then success.
	sameMap(t, "call span", attrs(call.Attributes()), with(requestAttrs(t, h.srv.AuthURL(), "POST", "actions.check", checkTmpl),
		"http.response.status_code", "200", "http.request.resend_count", "1"))
	sameStrings(t, "call events", events(call), []string{attempt(1, 503, "503")})
	if call.Status().Code != codes.Unset {
		t.Errorf("call span status %+v after a successful retry", call.Status())
	}
	want := fmt.Sprintf("00-%s-%s-01", step.SpanContext().TraceID(), call.SpanContext().SpanID())
	var got []string
	for _, r := range h.srv.Requests() {
		if r.Path == checkTmpl {
			got = append(got, r.Header.Get("Traceparent"))
		}
	}
	sameStrings(t, "traceparent of each attempt", got, []string{want, want})
}

func TestTelemetryDeliveredAndDropped(t *testing.T) {
	h := newHarness(t)
	agentID := h.srv.CreateAgent("bot")
	g, err := guard.New(h.client, agentID, guard.WithBatchSize(2), guard.WithFlushInterval(time.Hour), guard.WithSendAttempts(1))
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	g.Report(guard.ToolEnd("read_file", time.Millisecond))
	if got := h.points(t)[agenttrustotel.MetricTelemetryQueue+"{}"]; got != "1" {
		t.Errorf("queue size %q with one queued event, want 1", got)
	}
	g.Report(guard.ToolEnd("read_file", time.Millisecond))
	if err := g.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	g.Report(guard.Event{Type: "bogus", Tool: "x"})
	h.srv.InjectFault("POST /api/v1/telemetry/report", agenttrusttest.Fault{Status: 503})
	g.Report(guard.ToolEnd("write_file", time.Millisecond))
	g.Report(guard.ToolEnd("write_file", time.Millisecond))
	var de *guard.DeliveryError
	if err := g.Flush(ctx); !errors.As(err, &de) || de.Undelivered != 2 {
		t.Fatalf("Flush = %v", err)
	}
	if err := g.Close(ctx); err != nil {
		t.Fatal(err)
	}
	g.Report(guard.ToolEnd("late", time.Millisecond))

	spans := h.ended()
	if len(spans) != 2 {
		t.Fatalf("%d spans, want two telemetry calls", len(spans))
	}
	base := requestAttrs(t, h.srv.AuditURL(), "POST", "telemetry.report", "/api/v1/telemetry/report")
	sameMap(t, "delivered batch", attrs(spans[0].Attributes()), with(base, "http.response.status_code", "200"))
	sameMap(t, "failed batch", attrs(spans[1].Attributes()), with(base, "http.response.status_code", "503", "error.type", "503"))
	for _, s := range spans {
		if s.Name() != "agenttrust.telemetry.report" || s.SpanKind() != trace.SpanKindClient || s.Parent().IsValid() {
			t.Errorf("span %q kind %v parent %v", s.Name(), s.SpanKind(), s.Parent())
		}
	}
	sameMap(t, "metrics", h.points(t), map[string]string{
		"agenttrust.telemetry.events.sent{}":                                                                   "2",
		"agenttrust.telemetry.events.dropped{agenttrust.telemetry.drop_reason=invalid}":                        "1",
		"agenttrust.telemetry.events.dropped{agenttrust.telemetry.drop_reason=undeliverable}":                  "2",
		"agenttrust.telemetry.events.dropped{agenttrust.telemetry.drop_reason=closed}":                         "1",
		"agenttrust.telemetry.batches.failed{error.type=503}":                                                  "1",
		"agenttrust.telemetry.queue.size{}":                                                                    "0",
		requestMetric(t, h.srv.AuditURL(), "POST", "telemetry.report", "/api/v1/telemetry/report", 200, ""):    "count=1",
		requestMetric(t, h.srv.AuditURL(), "POST", "telemetry.report", "/api/v1/telemetry/report", 503, "503"): "count=1",
	})
}

func TestTelemetryQueueFull(t *testing.T) {
	h := newHarness(t)
	agentID := h.srv.CreateAgent("bot")
	g, err := guard.New(h.client, agentID, guard.WithBatchSize(2), guard.WithQueueCapacity(2), guard.WithFlushInterval(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close(context.Background())
	// A slow gateway keeps the first batch in flight while the third event
	// arrives: in-flight events count against the capacity.
	h.srv.InjectFault("POST /api/v1/telemetry/report", agenttrusttest.Fault{Latency: 200 * time.Millisecond, Times: 1})
	g.Report(guard.ToolEnd("a", time.Millisecond))
	g.Report(guard.ToolEnd("b", time.Millisecond))
	g.Report(guard.ToolEnd("c", time.Millisecond))
	if got := h.points(t)[agenttrustotel.MetricTelemetryQueue+"{}"]; got != "2" {
		t.Errorf("queue size %q, want 2", got)
	}
	if err := g.Flush(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	p := h.points(t)
	for k, want := range map[string]string{
		"agenttrust.telemetry.events.dropped{agenttrust.telemetry.drop_reason=queue_full}": "1",
		"agenttrust.telemetry.events.sent{}":                                               "2",
		"agenttrust.telemetry.queue.size{}":                                                "0",
	} {
		if p[k] != want {
			t.Errorf("%s = %q, want %q", k, p[k], want)
		}
	}
}

// TestMiddlewareCache: a tool provider's RequireToken middleware introspects
// a token once, then answers from its cache.
func TestMiddlewareCache(t *testing.T) {
	h := newHarness(t)
	agentID := h.srv.CreateAgent("bot", "files:read")
	ctx := ctxT(t)
	p := agenttrust.TokenIssueParams{AgentID: agentID, Scopes: []string{"files:read"}, Target: "files"}
	tok, err := h.client.Tokens.Issue(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.client.Tokens.Issue(ctx, p); err != nil {
		t.Fatal(err)
	}
	mw := tokenauth.RequireToken(h.client, tokenauth.WithRequiredScopes("files:read"), tokenauth.WithTarget("files"))
	srv := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	for i := 0; i < 2; i++ {
		r := httptest.NewRequest("GET", "/files", nil).WithContext(ctx)
		r.Header.Set("Authorization", "Bearer "+tok.Token)
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, r)
		if w.Code != http.StatusNoContent {
			t.Fatalf("request %d: %d %s", i, w.Code, w.Body)
		}
	}
	spans := h.ended()
	var names []string
	for _, s := range spans {
		names = append(names, s.Name())
	}
	sameStrings(t, "spans", names, []string{"agenttrust.tokens.issue", "agenttrust.tokens.introspect"})
	sameMap(t, "introspect span", attrs(spans[1].Attributes()), with(requestAttrs(t, h.srv.AuthURL(), "POST", "tokens.introspect",
		"/api/v1/agent-tokens/introspect"), "http.response.status_code", "200"))
	sameMap(t, "metrics", h.points(t), map[string]string{
		"agenttrust.cache.lookups{agenttrust.cache.name=token,agenttrust.cache.result=miss}":                       "1",
		"agenttrust.cache.lookups{agenttrust.cache.name=token,agenttrust.cache.result=hit}":                        "1",
		"agenttrust.cache.lookups{agenttrust.cache.name=introspection,agenttrust.cache.result=miss}":               "1",
		"agenttrust.cache.lookups{agenttrust.cache.name=introspection,agenttrust.cache.result=hit}":                "1",
		requestMetric(t, h.srv.AuthURL(), "POST", "tokens.issue", "/api/v1/agent-tokens/issue", 200, ""):           "count=1",
		requestMetric(t, h.srv.AuthURL(), "POST", "tokens.introspect", "/api/v1/agent-tokens/introspect", 200, ""): "count=1",
	})
}

// TestUnits checks the metric units against the README table.
func TestUnits(t *testing.T) {
	h := newHarness(t)
	agentID := h.srv.CreateAgent("bot", "read")
	g, err := guard.New(h.client, agentID, guard.WithFailOpen(true), guard.WithBatchSize(1))
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	h.srv.InjectFault("POST "+checkTmpl, agenttrusttest.Fault{Status: 503})
	if _, err := g.Check(ctx, "read_file", ""); err != nil {
		t.Fatal(err)
	}
	h.srv.InjectFault("POST /api/v1/telemetry/report", agenttrusttest.Fault{Status: 503, Times: 1})
	g.Report(guard.ToolEnd("read_file", time.Millisecond))
	g.Report(guard.Event{})
	if err := g.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := h.client.Tokens.Issue(ctx, agenttrust.TokenIssueParams{AgentID: agentID, Scopes: []string{"read"}}); err != nil {
		t.Fatal(err)
	}
	sameMap(t, "units", h.units(t), map[string]string{
		agenttrustotel.MetricRequestDuration:  "s",
		agenttrustotel.MetricCheckDuration:    "s",
		agenttrustotel.MetricDecisions:        "{decision}",
		agenttrustotel.MetricFailedOpen:       "{check}",
		agenttrustotel.MetricTelemetrySent:    "{event}",
		agenttrustotel.MetricTelemetryDropped: "{event}",
		agenttrustotel.MetricTelemetryFailed:  "{batch}",
		agenttrustotel.MetricTelemetryQueue:   "{event}",
		agenttrustotel.MetricCacheLookups:     "{lookup}",
	})
}
