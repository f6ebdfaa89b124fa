package agenttrust

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/agenttrustid/agenttrust-go/agenttrusttest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestFakeGatewayFlow runs every core method against the strict fake gateway
// in the split layout: the fake answers 400 to any drift from the wire contract.
func TestFakeGatewayFlow(t *testing.T) {
	srv := agenttrusttest.NewTestServer(t, agenttrusttest.WithSplitListeners())
	c := fakeClient(t, srv)
	ctx := context.Background()

	h, err := c.Health(ctx)
	require.NoError(t, err, "health: %v", h)
	require.Equal(t, "ok", h["status"], "health: %v %v", h, err)
	agent, err := c.Agents.Create(ctx, AgentCreateParams{Name: "billing <bot> & co", Capabilities: []string{"read", "write"},
		Metadata: map[string]any{"team": "billing"}})
	require.NoError(t, err, "create: %+v", agent)
	require.NotEmpty(t, agent.ID, "create: %+v %v", agent, err)
	require.Equal(t, AgentStatusActive, agent.Status, "create: %+v %v", agent, err)
	require.Equal(t, Framework("custom"), agent.Framework, "create: %+v %v", agent, err)
	got, err := c.Agents.Get(ctx, agent.ID)
	require.NoError(t, err, "get: %+v", got)
	require.Equal(t, "billing <bot> & co", got.Name, "get: %+v %v", got, err)
	require.False(t, got.CreatedAt.IsZero(), "get: %+v %v", got, err)
	list, err := c.Agents.List(ctx, AgentListParams{OrgID: srv.OrgID()})
	require.NoError(t, err, "list: %v", list)
	require.Len(t, list, 1, "list: %v %v", list, err)

	tok, err := c.Tokens.Issue(ctx, TokenIssueParams{AgentID: agent.ID, Scopes: []string{"write", "read"}, TTLSeconds: 300})
	require.NoError(t, err, "issue: %v", tok)
	require.True(t, strings.HasPrefix(tok.Token, "at_"), "issue: %v %v", tok, err)
	require.False(t, tok.ExpiresAt.IsZero(), "issue: %v %v", tok, err)
	srv.ClearRequests()
	again, err := c.Tokens.Issue(ctx, TokenIssueParams{AgentID: agent.ID, Scopes: []string{"read", "write"}})
	require.NoError(t, err, "cache: %v %v, %d requests", again, err, len(srv.Requests()))
	require.Equal(t, tok.Token, again.Token, "cache: %v %v, %d requests", again, err, len(srv.Requests()))
	require.Empty(t, srv.Requests(), "cache: %v %v, %d requests", again, err, len(srv.Requests()))
	in, err := c.Tokens.Introspect(ctx, TokenIntrospectParams{Token: tok.Token, RequiredScopes: []string{"read"}})
	require.NoError(t, err, "introspect: %+v", in)
	require.True(t, in.Active, "introspect: %+v %v", in, err)
	require.Equal(t, agent.ID, in.AgentID, "introspect: %+v %v", in, err)

	sess, err := c.Sessions.InitSession(ctx, agent.ID, "srv-1")
	require.NoError(t, err, "init session: %+v", sess)
	require.NotEmpty(t, sess.SessionID, "init session: %+v %v", sess, err)
	require.Equal(t, SessionSource("mcp"), sess.Source, "init session: %+v %v", sess, err)
	s2, err := c.Sessions.GetSession(ctx, sess.SessionID)
	require.NoError(t, err, "get session: %+v", s2)
	require.Equal(t, sess.SessionID, s2.SessionID, "get session: %+v %v", s2, err)
	as, err := c.Sessions.InitAPISession(ctx, tok.Token)
	require.NoError(t, err, "api session: %+v", as)
	require.Equal(t, SessionSource("api"), as.Source, "api session: %+v %v", as, err)

	srv.DenyTool("delete_file", "destructive tool")
	srv.RequireElevation("deploy")
	allowed, err := c.Actions.Check(ctx, ActionCheckParams{AgentID: agent.ID, ToolName: "read_file",
		ToolInputSummary: strings.Repeat("日", 300), SessionID: sess.SessionID})
	require.NoError(t, err, "check allowed: %+v", allowed)
	require.True(t, allowed.Allowed, "check allowed: %+v %v", allowed, err)
	require.True(t, allowed.Decided(), "check allowed: %+v %v", allowed, err)
	s := srv.Checks()[0].ActionInputSummary
	assert.Len(t, []rune(s), 200, "summary arrived with %d runes", len([]rune(s)))
	denied, err := c.Actions.Check(ctx, ActionCheckParams{AgentID: agent.ID, ToolName: "delete_file", SessionID: sess.SessionID})
	require.NoError(t, err, "check denied: %+v", denied)
	require.False(t, denied.Allowed, "check denied: %+v %v", denied, err)
	require.NotEmpty(t, denied.Reason, "check denied: %+v %v", denied, err)
	elev, err := c.Actions.Check(ctx, ActionCheckParams{AgentID: agent.ID, ToolName: "deploy", SessionID: sess.SessionID})
	require.NoError(t, err, "check elevation: %+v", elev)
	require.False(t, elev.Allowed, "check elevation: %+v %v", elev, err)
	require.True(t, elev.ElevationRequired, "check elevation: %+v %v", elev, err)
	require.NotEmpty(t, elev.ApprovalID, "check elevation: %+v %v", elev, err)
	ap, err := c.Approvals.Get(ctx, elev.ApprovalID)
	require.NoError(t, err, "approval: %+v", ap)
	require.Equal(t, ApprovalPending, ap.Status, "approval: %+v %v", ap, err)
	res, err := c.Approvals.Approve(ctx, elev.ApprovalID, "")
	require.NoError(t, err, "approve: %v", res)
	require.NotNil(t, res, "approve: %v %v", res, err)
	r, err := c.Actions.Check(ctx, ActionCheckParams{AgentID: agent.ID, ToolName: "deploy", SessionID: sess.SessionID})
	require.NoError(t, err, "check after approval: %+v", r)
	require.True(t, r.Allowed, "check after approval: %+v %v", r, err)
	elev2, _ := c.Actions.Check(ctx, ActionCheckParams{AgentID: agent.ID, ToolName: "deploy", SessionID: "other"})
	_, err = c.Approvals.Deny(ctx, elev2.ApprovalID, "alice")
	require.NoError(t, err, "deny")

	f, dur := false, 12
	_, err = c.Telemetry.Report(ctx, TelemetryReportParams{AgentID: agent.ID, SessionID: sess.SessionID,
		Events: []TelemetryEvent{{EventType: EventToolStart, ToolName: "<t>"},
			{EventType: EventToolError, ToolName: "<t>", DurationMs: &dur, Success: &f, ErrorType: "TimeoutError"}}})
	require.NoError(t, err, "report")
	evs := srv.TelemetryEvents()
	require.Len(t, evs, 2, "telemetry events %v", evs)
	require.NotNil(t, evs[1].Success, "telemetry events %v", evs)
	assert.False(t, *evs[1].Success, "telemetry events %v", evs)
	assert.Equal(t, "<t>", evs[0].ToolName, "telemetry events %v", evs)

	require.NoError(t, c.Tokens.Revoke(ctx, tok.Token, ""), "token revoke")
	in, err = c.Tokens.Verify(ctx, TokenIntrospectParams{Token: tok.Token})
	require.NoError(t, err, "revoked token: %+v", in)
	require.False(t, in.Active, "revoked token: %+v %v", in, err)
	require.NoError(t, c.Agents.Revoke(ctx, agent.ID, ""), "agent revoke")
	a, err := c.Agents.Get(ctx, agent.ID)
	require.NoError(t, err, "revoked agent: %+v", a)
	require.Equal(t, AgentStatusRevoked, a.Status, "revoked agent: %+v %v", a, err)
}

func TestFakeGatewayErrorsAndHostileIDs(t *testing.T) {
	srv := agenttrusttest.NewTestServer(t)
	c := fakeClient(t, srv)
	ctx := context.Background()
	for _, id := range []string{"../admin", "a/b", "a?b=c", "%2e%2e", "a#b", " ", "missing"} {
		_, err := c.Agents.Get(ctx, id)
		assert.ErrorIs(t, err, ErrNotFound, "Get(%q): %v", id, err)
		var ae *AgentTrustError
		if errors.As(err, &ae) {
			assert.NotEmpty(t, ae.RequestID, "Get(%q): no request id", id)
		}
	}
	bad := fakeClient(t, srv, WithAPIKey("sk_live_wrong_key"))
	_, err := bad.Agents.List(ctx, AgentListParams{})
	var authErr *AuthenticationError
	require.ErrorAs(t, err, &authErr, "bad key: %v", err)
	assert.NotContains(t, err.Error(), "sk_live_wrong_key", "bad key: %v", err)
}

func TestFakeGatewayFaults(t *testing.T) {
	srv := agenttrusttest.NewTestServer(t)
	c := fakeClient(t, srv)
	ctx := context.Background()
	agentID := srv.CreateAgent("bot", "read")

	srv.InjectFault("POST /api/v1/agenttrust/check", agenttrusttest.Fault{Status: 503, RetryAfter: "0", Times: 2})
	srv.ClearRequests()
	r, err := c.Actions.Check(ctx, ActionCheckParams{AgentID: agentID, ToolName: "read_file"})
	require.NoError(t, err, "check after two 503s: %+v", r)
	require.True(t, r.Allowed, "check after two 503s: %+v %v", r, err)
	n := len(srv.Requests())
	assert.Equal(t, 3, n, "%d requests, want 3", n)

	srv.InjectFault("POST /api/v1/agents", agenttrusttest.Fault{Status: 503, Times: 1})
	srv.ClearRequests()
	_, err = c.Agents.Create(ctx, AgentCreateParams{Name: "x"})
	require.Error(t, err, "create succeeded through a 503")
	n = len(srv.Requests())
	assert.Equal(t, 1, n, "create re-sent: %d requests", n)

	srv.InjectFault("POST /api/v1/agent-tokens/issue", agenttrusttest.Fault{Drop: true, Times: 1})
	srv.ClearRequests()
	_, err = c.Tokens.Issue(ctx, TokenIssueParams{AgentID: agentID, Scopes: []string{"read"}})
	assert.ErrorIs(t, err, ErrNetwork, "dropped issue: %v, %d requests", err, len(srv.Requests()))
	assert.Len(t, srv.Requests(), 1, "dropped issue: %v, %d requests", err, len(srv.Requests()))

	srv.InjectFault("GET /api/v1/agents/{agent_id}", agenttrusttest.Fault{Malformed: true})
	_, err = c.Agents.Get(ctx, agentID)
	assert.ErrorIs(t, err, ErrDecode, "malformed: %v", err)
	srv.ClearFaults()

	srv.InjectFault("GET /health", agenttrusttest.Fault{Latency: 5 * time.Second})
	slow := fakeClient(t, srv, WithTimeout(100*time.Millisecond))
	_, err = slow.Health(ctx)
	assert.ErrorIs(t, err, context.DeadlineExceeded, "slow health: %v", err)
	srv.ClearFaults()

	srv.InjectFault("POST /api/v1/agenttrust/check", agenttrusttest.Fault{Status: 429, RetryAfter: "7"})
	_, err = fakeClient(t, srv, WithRetryPolicy(RetryPolicy{})).Actions.Check(ctx,
		ActionCheckParams{AgentID: agentID})
	var rl *RateLimitError
	require.ErrorAs(t, err, &rl, "429: %v", err)
	assert.Equal(t, 7*time.Second, rl.RetryAfter, "429: %v", err)
}

func TestFakeGatewayTokenClock(t *testing.T) {
	srv := agenttrusttest.NewTestServer(t)
	c := fakeClient(t, srv)
	ctx := context.Background()
	agentID := srv.CreateAgent("bot", "read")
	tok, err := c.Tokens.Issue(ctx, TokenIssueParams{AgentID: agentID, Scopes: []string{"read"}, TTLSeconds: 60})
	require.NoError(t, err)
	srv.Advance(2 * time.Minute)
	in, err := c.Tokens.Introspect(ctx, TokenIntrospectParams{Token: tok.Token})
	require.NoError(t, err, "expired token: %+v", in)
	assert.False(t, in.Active, "expired token: %+v %v", in, err)
	assert.NotEmpty(t, in.Reasoning, "expired token: %+v %v", in, err)
}
