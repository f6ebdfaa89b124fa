package guard

import (
	"context"
	"errors"
	"testing"
	"time"

	agenttrust "github.com/agenttrustid/agenttrust-go"
	"github.com/agenttrustid/agenttrust-go/agenttrusttest"
)

// End-to-end tests against the fake gateway, with split listeners so that
// checks go to the auth URL and telemetry to the audit URL.

func fakeClient(t *testing.T, srv *agenttrusttest.Server) *agenttrust.Client {
	t.Helper()
	c, err := agenttrust.New(agenttrust.WithBaseURL(srv.URL()), agenttrust.WithAuthURL(srv.AuthURL()),
		agenttrust.WithAuditURL(srv.AuditURL()), agenttrust.WithAPIKey(srv.APIKey()), fastRetry)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestFakeGatewayFlow(t *testing.T) {
	srv := agenttrusttest.NewTestServer(t, agenttrusttest.WithSplitListeners())
	srv.DenyTool("delete_file", "no deletes")
	srv.RequireElevation("send_email")
	agentID := srv.CreateAgent("e2e")
	c := fakeClient(t, srv)
	g, err := New(c, agentID)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	if d, err := g.Check(ctx, "read_file", LengthSummary("/etc/hosts")); err != nil || !d.Allowed {
		t.Fatalf("read_file: %+v, %v", d, err)
	}
	g.Report(ToolEnd("read_file", 3*time.Millisecond))

	_, err = g.Check(ctx, "delete_file", "")
	var de *DeniedError
	if !errors.As(err, &de) || de.Reason != "no deletes" || de.CheckID == "" {
		t.Fatalf("delete_file: %v", err)
	}

	_, err = g.Check(ctx, "send_email", "")
	var ee *ElevationRequiredError
	if !errors.As(err, &ee) || ee.ApprovalID == "" {
		t.Fatalf("send_email: %v", err)
	}
	if _, err := c.Approvals.Approve(ctx, ee.ApprovalID, "alice"); err != nil {
		t.Fatal(err)
	}
	a, err := g.WaitForApproval(ctx, ee.ApprovalID, WithPollInterval(time.Millisecond))
	if err != nil || a.Status != "approved" {
		t.Fatalf("WaitForApproval = %+v, %v", a, err)
	}
	if d, err := g.Check(ctx, "send_email", ""); err != nil || !d.Allowed {
		t.Fatalf("send_email after approval: %+v, %v", d, err)
	}

	if err := g.Close(ctx); err != nil {
		t.Fatal(err)
	}
	checks := srv.Checks()
	if len(checks) != 4 || checks[0].ActionInputSummary != "[10 chars]" || checks[0].SessionID != g.SessionID() {
		t.Fatalf("checks %v", checks)
	}
	evs := srv.TelemetryEvents()
	if len(evs) != 1 || evs[0].EventType != "tool_end" || (evs[0].Success == nil || !*evs[0].Success) {
		t.Fatalf("events %v", evs)
	}
	if b := srv.TelemetryBatches(); b[0].AgentID != agentID || b[0].SessionID != g.SessionID() {
		t.Fatalf("batch %v", b[0])
	}
}

func TestFakeGatewayFaults(t *testing.T) {
	cases := []struct {
		name        string
		fault       agenttrusttest.Fault
		unavailable bool
	}{
		{"drop", agenttrusttest.Fault{Drop: true}, true},
		{"latency past the check timeout", agenttrusttest.Fault{Latency: 5 * time.Second}, true},
		{"500", agenttrusttest.Fault{Status: 500}, true},
		{"429", agenttrusttest.Fault{Status: 429, RetryAfter: "1"}, true},
		{"malformed", agenttrusttest.Fault{Malformed: true}, true},
		{"401", agenttrusttest.Fault{Status: 401}, false},
		{"403", agenttrusttest.Fault{Status: 403}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := agenttrusttest.NewTestServer(t)
			agentID := srv.CreateAgent("faults")
			srv.InjectFault("POST /api/v1/agenttrust/check", tc.fault)
			for _, open := range []bool{true, false} {
				g, err := New(fakeClient(t, srv), agentID, WithFailOpen(open), WithCheckTimeout(100*time.Millisecond))
				if err != nil {
					t.Fatal(err)
				}
				d, err := g.Check(context.Background(), "read_file", "")
				switch {
				case !tc.unavailable:
					if err == nil || d.Allowed || errors.Is(err, ErrGuardianUnavailable) {
						t.Fatalf("open=%v: %+v, %v", open, d, err)
					}
				case open:
					if err != nil || !d.Allowed || !d.FailedOpen {
						t.Fatalf("open: %+v, %v", d, err)
					}
				default:
					if !errors.Is(err, ErrGuardianUnavailable) || d.Allowed {
						t.Fatalf("closed: %+v, %v", d, err)
					}
				}
			}
		})
	}
}

func TestFakeGatewayTelemetryRetry(t *testing.T) {
	srv := agenttrusttest.NewTestServer(t)
	agentID := srv.CreateAgent("telemetry")
	srv.InjectFault("POST /api/v1/telemetry/report", agenttrusttest.Fault{Status: 503, Times: 2})
	g, err := New(fakeClient(t, srv), agentID, withClock(newFakeClock().clock()))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 15; i++ {
		g.Report(ToolStart("t"))
	}
	if err := g.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(srv.TelemetryEvents()); n != 15 {
		t.Fatalf("%d events arrived", n)
	}
	if s := g.Stats(); s.FailedBatches != 2 || s.Sent != 15 {
		t.Fatalf("stats %+v", s)
	}
}
