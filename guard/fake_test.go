package guard

import (
	"context"
	"testing"
	"time"

	agenttrust "github.com/agenttrustid/agenttrust-go"
	"github.com/agenttrustid/agenttrust-go/agenttrusttest"
	"github.com/stretchr/testify/require"
)

// End-to-end tests against the fake gateway, with split listeners so that
// checks go to the auth URL and telemetry to the audit URL.

func fakeClient(t *testing.T, srv *agenttrusttest.Server) *agenttrust.Client {
	t.Helper()
	c, err := agenttrust.New(agenttrust.WithBaseURL(srv.URL()), agenttrust.WithAuthURL(srv.AuthURL()),
		agenttrust.WithAuditURL(srv.AuditURL()), agenttrust.WithAPIKey(srv.APIKey()), fastRetry)
	require.NoError(t, err)
	return c
}

func TestFakeGatewayFlow(t *testing.T) {
	srv := agenttrusttest.NewTestServer(t, agenttrusttest.WithSplitListeners())
	srv.DenyTool("delete_file", "no deletes")
	srv.RequireElevation("send_email")
	agentID := srv.CreateAgent("e2e")
	c := fakeClient(t, srv)
	g, err := New(c, agentID)
	require.NoError(t, err)
	ctx := context.Background()

	d, err := g.Check(ctx, "read_file", LengthSummary("/etc/hosts"))
	require.NoError(t, err, "read_file: %+v, %v", d, err)
	require.True(t, d.Allowed, "read_file: %+v, %v", d, err)
	g.Report(ToolEnd("read_file", 3*time.Millisecond))

	_, err = g.Check(ctx, "delete_file", "")
	var de *DeniedError
	require.ErrorAs(t, err, &de, "delete_file: %v", err)
	require.Equal(t, "no deletes", de.Reason, "delete_file: %v", err)
	require.NotEqual(t, "", de.CheckID, "delete_file: %v", err)

	_, err = g.Check(ctx, "send_email", "")
	var ee *ElevationRequiredError
	require.ErrorAs(t, err, &ee, "send_email: %v", err)
	require.NotEqual(t, "", ee.ApprovalID, "send_email: %v", err)
	_, err = c.Approvals.Approve(ctx, ee.ApprovalID, "alice")
	require.NoError(t, err)
	a, err := g.WaitForApproval(ctx, ee.ApprovalID, WithPollInterval(time.Millisecond))
	require.NoError(t, err, "WaitForApproval = %+v, %v", a, err)
	require.EqualValues(t, "approved", a.Status, "WaitForApproval = %+v, %v", a, err)
	d, err = g.Check(ctx, "send_email", "")
	require.NoError(t, err, "send_email after approval: %+v, %v", d, err)
	require.True(t, d.Allowed, "send_email after approval: %+v, %v", d, err)

	require.NoError(t, g.Close(ctx))
	checks := srv.Checks()
	require.Len(t, checks, 4, "checks %v", checks)
	require.Equal(t, "[10 chars]", checks[0].ActionInputSummary, "checks %v", checks)
	require.Equal(t, g.SessionID(), checks[0].SessionID, "checks %v", checks)
	evs := srv.TelemetryEvents()
	require.Len(t, evs, 1, "events %v", evs)
	require.Equal(t, "tool_end", evs[0].EventType, "events %v", evs)
	require.NotNil(t, evs[0].Success, "events %v", evs)
	require.True(t, *evs[0].Success, "events %v", evs)
	b := srv.TelemetryBatches()
	require.Equal(t, agentID, b[0].AgentID, "batch %v", b[0])
	require.Equal(t, g.SessionID(), b[0].SessionID, "batch %v", b[0])
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
				require.NoError(t, err)
				d, err := g.Check(context.Background(), "read_file", "")
				switch {
				case !tc.unavailable:
					require.Error(t, err, "open=%v: %+v, %v", open, d, err)
					require.False(t, d.Allowed, "open=%v: %+v, %v", open, d, err)
					require.NotErrorIs(t, err, ErrGuardianUnavailable, "open=%v: %+v, %v", open, d, err)
				case open:
					require.NoError(t, err, "open: %+v, %v", d, err)
					require.True(t, d.Allowed, "open: %+v, %v", d, err)
					require.True(t, d.FailedOpen, "open: %+v, %v", d, err)
				default:
					require.ErrorIs(t, err, ErrGuardianUnavailable, "closed: %+v, %v", d, err)
					require.False(t, d.Allowed, "closed: %+v, %v", d, err)
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
	require.NoError(t, err)
	for i := 0; i < 15; i++ {
		g.Report(ToolStart("t"))
	}
	require.NoError(t, g.Close(context.Background()))
	n := len(srv.TelemetryEvents())
	require.EqualValues(t, 15, n, "%d events arrived", n)
	s := g.Stats()
	require.EqualValues(t, 2, s.FailedBatches, "stats %+v", s)
	require.EqualValues(t, 15, s.Sent, "stats %+v", s)
}
