package agenttrustotel_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	agenttrust "github.com/agenttrustid/agenttrust-go"
	"github.com/agenttrustid/agenttrust-go/agenttrusttest"
	"github.com/agenttrustid/agenttrust-go/guard"
	agenttrustotel "github.com/agenttrustid/agenttrust-go/integrations/otel"
	"github.com/agenttrustid/agenttrust-go/tokenauth"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
	var names []string
	for _, s := range spans {
		names = append(names, s.Name())
	}
	require.Len(t, spans, 2, "spans %q, want the call and the check", names)
	call, check = spans[0], spans[1]
	assert.Equal(t, agenttrustotel.SpanCheck, check.Name(), "check span")
	assert.Equal(t, trace.SpanKindInternal, check.SpanKind(), "check span kind")
	assert.Equal(t, "agenttrust.actions.check", call.Name(), "call span")
	assert.Equal(t, trace.SpanKindClient, call.SpanKind(), "call span kind")
	assert.Equal(t, check.SpanContext().SpanID(), call.Parent().SpanID(), "the call is not a child of the check")
	assert.Equal(t, check.SpanContext().TraceID(), call.SpanContext().TraceID(), "the call is not in the check's trace")
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
			require.NoError(t, err)
			defer g.Close(context.Background())
			d, err := g.Check(ctxT(t), tc.tool, "private input")
			if tc.wantErr == nil {
				require.NoError(t, err, "Check = %+v", d)
			} else {
				require.ErrorAs(t, err, tc.wantErr, "Check = %+v", d)
			}
			require.NotEmpty(t, d.CheckID, "decision without id: %+v", d)
			require.NotEmpty(t, d.GuardTier, "decision without tier: %+v", d)
			check, call := checkSpans(t, h)
			assert.Equal(t, map[string]string{
				"agenttrust.tool.name":     tc.tool,
				"agenttrust.agent.id":      agentID,
				"agenttrust.check.outcome": tc.outcome,
				"agenttrust.guard.tier":    d.GuardTier,
				"agenttrust.check.id":      d.CheckID,
			}, attrs(check.Attributes()), "check span")
			assert.Equal(t, codes.Unset, check.Status().Code, "check span status %v", check.Status())
			assert.Equal(t, with(requestAttrs(t, h.srv.AuthURL(), "POST", "actions.check", checkTmpl), "http.response.status_code", "200"), attrs(call.Attributes()), "call span")
			assert.Empty(t, events(call), "call events")
			assert.Equal(t, map[string]string{
				"agenttrust.guard.check.duration{agenttrust.check.outcome=" + tc.outcome + "}": "count=1",
				"agenttrust.guard.decisions{agenttrust.check.outcome=" + tc.outcome + "}":      "1",
				requestMetric(t, h.srv.AuthURL(), "POST", "actions.check", checkTmpl, 200, ""): "count=1",
			}, h.points(t), "metrics")
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
	require.NoError(t, err)
	defer g.Close(context.Background())
	d, err := g.Check(ctxT(t), "read_file", "")
	require.NoError(t, err, "Check = %+v", d)
	require.True(t, d.FailedOpen, "Check = %+v", d)
	check, call := checkSpans(t, h)
	assert.Equal(t, map[string]string{
		"agenttrust.tool.name":     "read_file",
		"agenttrust.agent.id":      agentID,
		"agenttrust.check.outcome": "failed_open",
		"error.type":               "503",
	}, attrs(check.Attributes()), "check span")
	assert.Equal(t, codes.Unset, check.Status().Code, "check span status %v: failing open is the configured behaviour", check.Status())
	assert.Equal(t, with(requestAttrs(t, h.srv.AuthURL(), "POST", "actions.check", checkTmpl),
		"http.response.status_code", "503", "error.type", "503", "http.request.resend_count", "2"), attrs(call.Attributes()), "call span")
	assert.Equal(t, codes.Error, call.Status().Code, "call span status %+v", call.Status())
	assert.Equal(t, "503", call.Status().Description, "call span status %+v", call.Status())
	assert.Equal(t, []string{attempt(1, 503, "503"), attempt(2, 503, "503"), attempt(3, 503, "503")}, events(call), "call events")
	assert.Equal(t, map[string]string{
		"agenttrust.guard.check.duration{agenttrust.check.outcome=failed_open}":           "count=1",
		"agenttrust.guard.decisions{agenttrust.check.outcome=failed_open}":                "1",
		"agenttrust.guard.failed_open{error.type=503}":                                    "1",
		requestMetric(t, h.srv.AuthURL(), "POST", "actions.check", checkTmpl, 503, "503"): "count=1",
	}, h.points(t), "metrics")
}

// TestFailClosed: the Guardian does not answer within the check timeout;
// the guard fails closed.
func TestFailClosed(t *testing.T) {
	h := newHarness(t)
	h.srv.InjectFault("POST "+checkTmpl, agenttrusttest.Fault{Latency: time.Minute})
	agentID := h.srv.CreateAgent("bot")
	g, err := guard.New(h.client, agentID, guard.WithCheckTimeout(50*time.Millisecond))
	require.NoError(t, err)
	defer g.Close(context.Background())
	var ue *guard.UnavailableError
	_, err = g.Check(ctxT(t), "read_file", "")
	require.ErrorAs(t, err, &ue, "Check error")
	check, call := checkSpans(t, h)
	assert.Equal(t, map[string]string{
		"agenttrust.tool.name":     "read_file",
		"agenttrust.agent.id":      agentID,
		"agenttrust.check.outcome": "unavailable",
		"error.type":               "timeout",
	}, attrs(check.Attributes()), "check span")
	assert.Equal(t, codes.Error, check.Status().Code, "check span status %+v", check.Status())
	assert.Equal(t, "unavailable", check.Status().Description, "check span status %+v", check.Status())
	assert.Equal(t, with(requestAttrs(t, h.srv.AuthURL(), "POST", "actions.check", checkTmpl),
		"error.type", "timeout"), attrs(call.Attributes()), "call span")
	assert.Equal(t, []string{attempt(1, 0, "timeout")}, events(call), "call events")
	assert.Equal(t, map[string]string{
		"agenttrust.guard.check.duration{agenttrust.check.outcome=unavailable}":             "count=1",
		"agenttrust.guard.decisions{agenttrust.check.outcome=unavailable}":                  "1",
		requestMetric(t, h.srv.AuthURL(), "POST", "actions.check", checkTmpl, 0, "timeout"): "count=1",
	}, h.points(t), "metrics")
}

// TestTraceContextPropagated: the fake gateway receives a traceparent naming
// the call's span, in the trace of the caller's span.
func TestTraceContextPropagated(t *testing.T) {
	h := newHarness(t)
	h.srv.InjectFault("POST "+checkTmpl, agenttrusttest.Fault{Status: 503, Times: 1})
	agentID := h.srv.CreateAgent("bot")
	g, err := guard.New(h.client, agentID)
	require.NoError(t, err)
	defer g.Close(context.Background())
	ctx, step := h.tp.Tracer("agent").Start(ctxT(t), "agent.step")
	_, err = g.Check(ctx, "read_file", "")
	require.NoError(t, err)
	step.End()
	spans := h.ended()
	require.Len(t, spans, 3, "want call, check and step")
	call, check := spans[0], spans[1]
	assert.Equal(t, step.SpanContext().SpanID(), check.Parent().SpanID(), "the check span is not a child of the caller's span")
	// The retried call: one failed attempt, then success.
	assert.Equal(t, with(requestAttrs(t, h.srv.AuthURL(), "POST", "actions.check", checkTmpl),
		"http.response.status_code", "200", "http.request.resend_count", "1"), attrs(call.Attributes()), "call span")
	assert.Equal(t, []string{attempt(1, 503, "503")}, events(call), "call events")
	assert.Equal(t, codes.Unset, call.Status().Code, "call span status %+v after a successful retry", call.Status())
	want := fmt.Sprintf("00-%s-%s-01", step.SpanContext().TraceID(), call.SpanContext().SpanID())
	var got []string
	for _, r := range h.srv.Requests() {
		if r.Path == checkTmpl {
			got = append(got, r.Header.Get("Traceparent"))
		}
	}
	assert.Equal(t, []string{want, want}, got, "traceparent of each attempt")
}

func TestTelemetryDeliveredAndDropped(t *testing.T) {
	h := newHarness(t)
	agentID := h.srv.CreateAgent("bot")
	g, err := guard.New(h.client, agentID, guard.WithBatchSize(2), guard.WithFlushInterval(time.Hour), guard.WithSendAttempts(1))
	require.NoError(t, err)
	ctx := ctxT(t)
	g.Report(guard.ToolEnd("read_file", time.Millisecond))
	assert.Equal(t, "1", h.points(t)[agenttrustotel.MetricTelemetryQueue+"{}"], "queue size with one queued event")
	g.Report(guard.ToolEnd("read_file", time.Millisecond))
	require.NoError(t, g.Flush(ctx))
	g.Report(guard.Event{Type: "bogus", Tool: "x"})
	h.srv.InjectFault("POST /api/v1/telemetry/report", agenttrusttest.Fault{Status: 503})
	g.Report(guard.ToolEnd("write_file", time.Millisecond))
	g.Report(guard.ToolEnd("write_file", time.Millisecond))
	var de *guard.DeliveryError
	err = g.Flush(ctx)
	require.ErrorAs(t, err, &de, "Flush")
	require.Equal(t, 2, de.Undelivered, "Flush = %v", err)
	require.NoError(t, g.Close(ctx))
	g.Report(guard.ToolEnd("late", time.Millisecond))

	spans := h.ended()
	require.Len(t, spans, 2, "want two telemetry calls")
	base := requestAttrs(t, h.srv.AuditURL(), "POST", "telemetry.report", "/api/v1/telemetry/report")
	assert.Equal(t, with(base, "http.response.status_code", "200"), attrs(spans[0].Attributes()), "delivered batch")
	assert.Equal(t, with(base, "http.response.status_code", "503", "error.type", "503"), attrs(spans[1].Attributes()), "failed batch")
	for i, s := range spans {
		assert.Equal(t, "agenttrust.telemetry.report", s.Name(), "span %d", i)
		assert.Equal(t, trace.SpanKindClient, s.SpanKind(), "span %d kind", i)
		assert.False(t, s.Parent().IsValid(), "span %d parent %v", i, s.Parent())
	}
	assert.Equal(t, map[string]string{
		"agenttrust.telemetry.events.sent{}":                                                                   "2",
		"agenttrust.telemetry.events.dropped{agenttrust.telemetry.drop_reason=invalid}":                        "1",
		"agenttrust.telemetry.events.dropped{agenttrust.telemetry.drop_reason=undeliverable}":                  "2",
		"agenttrust.telemetry.events.dropped{agenttrust.telemetry.drop_reason=closed}":                         "1",
		"agenttrust.telemetry.batches.failed{error.type=503}":                                                  "1",
		"agenttrust.telemetry.queue.size{}":                                                                    "0",
		requestMetric(t, h.srv.AuditURL(), "POST", "telemetry.report", "/api/v1/telemetry/report", 200, ""):    "count=1",
		requestMetric(t, h.srv.AuditURL(), "POST", "telemetry.report", "/api/v1/telemetry/report", 503, "503"): "count=1",
	}, h.points(t), "metrics")
}

func TestTelemetryQueueFull(t *testing.T) {
	h := newHarness(t)
	agentID := h.srv.CreateAgent("bot")
	g, err := guard.New(h.client, agentID, guard.WithBatchSize(2), guard.WithQueueCapacity(2), guard.WithFlushInterval(time.Hour))
	require.NoError(t, err)
	defer g.Close(context.Background())
	// A slow gateway keeps the first batch in flight while the third event
	// arrives: in-flight events count against the capacity.
	h.srv.InjectFault("POST /api/v1/telemetry/report", agenttrusttest.Fault{Latency: 200 * time.Millisecond, Times: 1})
	g.Report(guard.ToolEnd("a", time.Millisecond))
	g.Report(guard.ToolEnd("b", time.Millisecond))
	g.Report(guard.ToolEnd("c", time.Millisecond))
	assert.Equal(t, "2", h.points(t)[agenttrustotel.MetricTelemetryQueue+"{}"], "queue size")
	require.NoError(t, g.Flush(ctxT(t)))
	p := h.points(t)
	for k, want := range map[string]string{
		"agenttrust.telemetry.events.dropped{agenttrust.telemetry.drop_reason=queue_full}": "1",
		"agenttrust.telemetry.events.sent{}":                                               "2",
		"agenttrust.telemetry.queue.size{}":                                                "0",
	} {
		assert.Equal(t, want, p[k], k)
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
	require.NoError(t, err)
	_, err = h.client.Tokens.Issue(ctx, p)
	require.NoError(t, err)
	mw := tokenauth.RequireToken(h.client, tokenauth.WithRequiredScopes("files:read"), tokenauth.WithTarget("files"))
	srv := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	for i := 0; i < 2; i++ {
		r := httptest.NewRequest("GET", "/files", nil).WithContext(ctx)
		r.Header.Set("Authorization", "Bearer "+tok.Token)
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, r)
		require.Equal(t, http.StatusNoContent, w.Code, "request %d: %s", i, w.Body)
	}
	spans := h.ended()
	var names []string
	for _, s := range spans {
		names = append(names, s.Name())
	}
	assert.Equal(t, []string{"agenttrust.tokens.issue", "agenttrust.tokens.introspect"}, names, "spans")
	assert.Equal(t, with(requestAttrs(t, h.srv.AuthURL(), "POST", "tokens.introspect",
		"/api/v1/agent-tokens/introspect"), "http.response.status_code", "200"), attrs(spans[1].Attributes()), "introspect span")
	assert.Equal(t, map[string]string{
		"agenttrust.cache.lookups{agenttrust.cache.name=token,agenttrust.cache.result=miss}":                       "1",
		"agenttrust.cache.lookups{agenttrust.cache.name=token,agenttrust.cache.result=hit}":                        "1",
		"agenttrust.cache.lookups{agenttrust.cache.name=introspection,agenttrust.cache.result=miss}":               "1",
		"agenttrust.cache.lookups{agenttrust.cache.name=introspection,agenttrust.cache.result=hit}":                "1",
		requestMetric(t, h.srv.AuthURL(), "POST", "tokens.issue", "/api/v1/agent-tokens/issue", 200, ""):           "count=1",
		requestMetric(t, h.srv.AuthURL(), "POST", "tokens.introspect", "/api/v1/agent-tokens/introspect", 200, ""): "count=1",
	}, h.points(t), "metrics")
}

// TestUnits checks the metric units against the README table.
func TestUnits(t *testing.T) {
	h := newHarness(t)
	agentID := h.srv.CreateAgent("bot", "read")
	g, err := guard.New(h.client, agentID, guard.WithFailOpen(true), guard.WithBatchSize(1))
	require.NoError(t, err)
	ctx := ctxT(t)
	h.srv.InjectFault("POST "+checkTmpl, agenttrusttest.Fault{Status: 503})
	_, err = g.Check(ctx, "read_file", "")
	require.NoError(t, err)
	h.srv.InjectFault("POST /api/v1/telemetry/report", agenttrusttest.Fault{Status: 503, Times: 1})
	g.Report(guard.ToolEnd("read_file", time.Millisecond))
	g.Report(guard.Event{})
	require.NoError(t, g.Close(ctx))
	_, err = h.client.Tokens.Issue(ctx, agenttrust.TokenIssueParams{AgentID: agentID, Scopes: []string{"read"}})
	require.NoError(t, err)
	assert.Equal(t, map[string]string{
		agenttrustotel.MetricRequestDuration:  "s",
		agenttrustotel.MetricCheckDuration:    "s",
		agenttrustotel.MetricDecisions:        "{decision}",
		agenttrustotel.MetricFailedOpen:       "{check}",
		agenttrustotel.MetricTelemetrySent:    "{event}",
		agenttrustotel.MetricTelemetryDropped: "{event}",
		agenttrustotel.MetricTelemetryFailed:  "{batch}",
		agenttrustotel.MetricTelemetryQueue:   "{event}",
		agenttrustotel.MetricCacheLookups:     "{lookup}",
	}, h.units(t), "units")
}
