package agenttrustotel_test

import (
	"context"
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
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// withPassword puts user information with a password into a service URL.
func withPassword(u string) string {
	return strings.Replace(u, "http://", "http://svc-user:url-pass-0xdeadbeef@", 1)
}

// exported renders everything the observer exported: span names, kinds,
// attributes, events, statuses and links, and every metric with its points.
func exported(t *testing.T, h *harness) string {
	t.Helper()
	var b strings.Builder
	for _, s := range h.ended() {
		fmt.Fprintf(&b, "span %s %v %v %+v %+v %+v\n", s.Name(), s.SpanKind(), s.Attributes(), s.Events(), s.Status(), s.Links())
	}
	var rm metricdata.ResourceMetrics
	require.NoError(t, h.reader.Collect(context.Background(), &rm))
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			fmt.Fprintf(&b, "metric %s %s %+v\n", m.Name, m.Unit, m.Data)
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					fmt.Fprintf(&b, "  %s\n", setString(p.Attributes))
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					fmt.Fprintf(&b, "  %s\n", setString(p.Attributes))
				}
			}
		}
	}
	return b.String()
}

// secretRun exercises every hook with secrets in play: the API key, a URL
// password (not on the auth URL: the fake gateway takes any Authorization
// header on a check for a sender-constrained token), an issued token
// (introspected directly and by the middleware), an input summary, ids in
// paths, a failing and a failing-open check and undeliverable telemetry.
func secretRun(t *testing.T, h *harness) (secrets []string, summary string) {
	t.Helper()
	ctx := ctxT(t)
	c := h.newClient(t, agenttrust.WithObserver(h.obs), agenttrust.WithBaseURL(withPassword(h.srv.URL())),
		agenttrust.WithAuditURL(withPassword(h.srv.AuditURL())))
	agentID := h.srv.CreateAgent("bot", "files:read")
	tok, err := c.Tokens.Issue(ctx, agenttrust.TokenIssueParams{AgentID: agentID, Scopes: []string{"files:read"}})
	require.NoError(t, err)
	_, err = c.Tokens.Introspect(ctx, agenttrust.TokenIntrospectParams{Token: tok.Token})
	require.NoError(t, err)
	mw := tokenauth.RequireToken(c)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	for i := 0; i < 2; i++ {
		r := httptest.NewRequest("GET", "/x", nil).WithContext(ctx)
		r.Header.Set("Authorization", "Bearer "+tok.Token)
		mw.ServeHTTP(httptest.NewRecorder(), r)
	}
	_, err = c.Approvals.Get(ctx, "approval-id-in-path")
	require.Error(t, err, "unknown approval found")
	summary = "customer card 4111-1111-1111-1111"
	g, err := guard.New(c, agentID, guard.WithFailOpen(true), guard.WithSendAttempts(1), guard.WithBatchSize(1))
	require.NoError(t, err)
	_, err = g.Check(ctx, "read_file", summary)
	require.NoError(t, err)
	h.srv.InjectFault("POST /api/v1/agenttrust/check", agenttrusttest.Fault{Status: 503})
	_, err = g.Check(ctx, "read_file", summary)
	require.NoError(t, err)
	h.srv.ClearFaults()
	h.srv.InjectFault("POST /api/v1/telemetry/report", agenttrusttest.Fault{Status: 503})
	g.Report(guard.ToolEnd("read_file", time.Millisecond))
	_ = g.Close(ctx)
	bad := h.newClient(t, agenttrust.WithObserver(h.obs), agenttrust.WithAPIKey("sk_wrong_key_0123456789"))
	_, err = bad.Agents.Get(ctx, agentID)
	require.Error(t, err, "wrong key accepted")
	return []string{h.srv.APIKey(), "sk_wrong_key_0123456789", "url-pass-0xdeadbeef", "svc-user", tok.Token,
		"approval-id-in-path", summary, "1111-1111"}, summary
}

func TestNoSecretExported(t *testing.T) {
	h := newHarness(t)
	secrets, _ := secretRun(t, h)
	out := exported(t, h)
	for _, s := range secrets {
		assert.NotContains(t, out, s, "exported data contains a secret")
	}
	// The scan looked at real data.
	for _, want := range []string{"agenttrust.tokens.introspect", "agenttrust.guard.check", "failed_open",
		"agenttrust.telemetry.events.dropped", "introspection", "401"} {
		assert.Contains(t, out, want, "exported data lacks it")
	}
}

func TestInputSummariesOptIn(t *testing.T) {
	h := newHarness(t, agenttrustotel.WithInputSummaries())
	_, summary := secretRun(t, h)
	n := 0
	for _, s := range h.ended() {
		if s.Name() != agenttrustotel.SpanCheck {
			continue
		}
		n++
		assert.Equal(t, summary, attrs(s.Attributes())[string(agenttrustotel.AttrInputSummary)], "input summary")
	}
	assert.Equal(t, 2, n, "check spans")
}
