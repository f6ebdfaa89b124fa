package agenttrust

import (
	"context"
	"errors"
	"github.com/agenttrustid/agenttrust-go/agenttrusttest"
	"strings"
	"testing"
	"time"
)

// TestFakeGatewayFlow runs every core method against the strict fake gateway
// in the split layout: the fake answers 400 to any drift from the wire contract.
func TestFakeGatewayFlow(t *testing.T) {
	srv := agenttrusttest.NewTestServer(t, agenttrusttest.WithSplitListeners())
	c := fakeClient(t, srv)
	ctx := context.Background()

	if h, err := c.Health(ctx); err != nil || h["status"] != "ok" {
		t.Fatalf("health: %v %v", h, err)
	}
	agent, err := c.Agents.Create(ctx, AgentCreateParams{Name: "billing <bot> & co", Capabilities: []string{"read", "write"},
		Metadata: map[string]any{"team": "billing"}})
	if err != nil || agent.ID == "" || agent.Status != AgentStatusActive || agent.Framework != "custom" {
		t.Fatalf("create: %+v %v", agent, err)
	}
	got, err := c.Agents.Get(ctx, agent.ID)
	if err != nil || got.Name != "billing <bot> & co" || got.CreatedAt.IsZero() {
		t.Fatalf("get: %+v %v", got, err)
	}
	list, err := c.Agents.List(ctx, AgentListParams{OrgID: srv.OrgID()})
	if err != nil || len(list) != 1 {
		t.Fatalf("list: %v %v", list, err)
	}

	tok, err := c.Tokens.Issue(ctx, TokenIssueParams{AgentID: agent.ID, Scopes: []string{"write", "read"}, TTLSeconds: 300})
	if err != nil || !strings.HasPrefix(tok.Token, "at_") || tok.ExpiresAt.IsZero() {
		t.Fatalf("issue: %v %v", tok, err)
	}
	srv.ClearRequests()
	again, err := c.Tokens.Issue(ctx, TokenIssueParams{AgentID: agent.ID, Scopes: []string{"read", "write"}})
	if err != nil || again.Token != tok.Token || len(srv.Requests()) != 0 {
		t.Fatalf("cache: %v %v, %d requests", again, err, len(srv.Requests()))
	}
	in, err := c.Tokens.Introspect(ctx, TokenIntrospectParams{Token: tok.Token, RequiredScopes: []string{"read"}})
	if err != nil || !in.Active || in.AgentID != agent.ID {
		t.Fatalf("introspect: %+v %v", in, err)
	}

	sess, err := c.Sessions.InitSession(ctx, agent.ID, "srv-1")
	if err != nil || sess.SessionID == "" || sess.Source != "mcp" {
		t.Fatalf("init session: %+v %v", sess, err)
	}
	if s2, err := c.Sessions.GetSession(ctx, sess.SessionID); err != nil || s2.SessionID != sess.SessionID {
		t.Fatalf("get session: %+v %v", s2, err)
	}
	if as, err := c.Sessions.InitAPISession(ctx, tok.Token); err != nil || as.Source != "api" {
		t.Fatalf("api session: %+v %v", as, err)
	}

	srv.DenyTool("delete_file", "destructive tool")
	srv.RequireElevation("deploy")
	allowed, err := c.Actions.Check(ctx, ActionCheckParams{AgentID: agent.ID, ToolName: "read_file",
		ToolInputSummary: strings.Repeat("日", 300), SessionID: sess.SessionID})
	if err != nil || !allowed.Allowed || !allowed.Decided() {
		t.Fatalf("check allowed: %+v %v", allowed, err)
	}
	if s := srv.Checks()[0].ActionInputSummary; len([]rune(s)) != 200 {
		t.Errorf("summary arrived with %d runes", len([]rune(s)))
	}
	denied, err := c.Actions.Check(ctx, ActionCheckParams{AgentID: agent.ID, ToolName: "delete_file", SessionID: sess.SessionID})
	if err != nil || denied.Allowed || denied.Reason == "" {
		t.Fatalf("check denied: %+v %v", denied, err)
	}
	elev, err := c.Actions.Check(ctx, ActionCheckParams{AgentID: agent.ID, ToolName: "deploy", SessionID: sess.SessionID})
	if err != nil || elev.Allowed || !elev.ElevationRequired || elev.ApprovalID == "" {
		t.Fatalf("check elevation: %+v %v", elev, err)
	}
	ap, err := c.Approvals.Get(ctx, elev.ApprovalID)
	if err != nil || ap.Status != ApprovalPending {
		t.Fatalf("approval: %+v %v", ap, err)
	}
	if res, err := c.Approvals.Approve(ctx, elev.ApprovalID, ""); err != nil || res == nil {
		t.Fatalf("approve: %v %v", res, err)
	}
	if r, err := c.Actions.Check(ctx, ActionCheckParams{AgentID: agent.ID, ToolName: "deploy", SessionID: sess.SessionID}); err != nil || !r.Allowed {
		t.Fatalf("check after approval: %+v %v", r, err)
	}
	elev2, _ := c.Actions.Check(ctx, ActionCheckParams{AgentID: agent.ID, ToolName: "deploy", SessionID: "other"})
	if _, err := c.Approvals.Deny(ctx, elev2.ApprovalID, "alice"); err != nil {
		t.Fatalf("deny: %v", err)
	}

	f, dur := false, 12
	if _, err := c.Telemetry.Report(ctx, TelemetryReportParams{AgentID: agent.ID, SessionID: sess.SessionID,
		Events: []TelemetryEvent{{EventType: EventToolStart, ToolName: "<t>"},
			{EventType: EventToolError, ToolName: "<t>", DurationMs: &dur, Success: &f, ErrorType: "TimeoutError"}}}); err != nil {
		t.Fatalf("report: %v", err)
	}
	evs := srv.TelemetryEvents()
	if len(evs) != 2 || (evs[1].Success == nil || *evs[1].Success) || evs[0].ToolName != "<t>" {
		t.Errorf("telemetry events %v", evs)
	}

	if err := c.Tokens.Revoke(ctx, tok.Token, ""); err != nil {
		t.Fatalf("token revoke: %v", err)
	}
	if in, err := c.Tokens.Verify(ctx, TokenIntrospectParams{Token: tok.Token}); err != nil || in.Active {
		t.Fatalf("revoked token: %+v %v", in, err)
	}
	if err := c.Agents.Revoke(ctx, agent.ID, ""); err != nil {
		t.Fatalf("agent revoke: %v", err)
	}
	if a, err := c.Agents.Get(ctx, agent.ID); err != nil || a.Status != AgentStatusRevoked {
		t.Fatalf("revoked agent: %+v %v", a, err)
	}
}

func TestFakeGatewayErrorsAndHostileIDs(t *testing.T) {
	srv := agenttrusttest.NewTestServer(t)
	c := fakeClient(t, srv)
	ctx := context.Background()
	for _, id := range []string{"../admin", "a/b", "a?b=c", "%2e%2e", "a#b", " ", "missing"} {
		_, err := c.Agents.Get(ctx, id)
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("Get(%q): %v", id, err)
		}
		var ae *AgentTrustError
		if errors.As(err, &ae) && ae.RequestID == "" {
			t.Errorf("Get(%q): no request id", id)
		}
	}
	bad := fakeClient(t, srv, WithAPIKey("sk_live_wrong_key"))
	_, err := bad.Agents.List(ctx, AgentListParams{})
	var authErr *AuthenticationError
	if !errors.As(err, &authErr) || strings.Contains(err.Error(), "sk_live_wrong_key") {
		t.Errorf("bad key: %v", err)
	}
}

func TestFakeGatewayFaults(t *testing.T) {
	srv := agenttrusttest.NewTestServer(t)
	c := fakeClient(t, srv)
	ctx := context.Background()
	agentID := srv.CreateAgent("bot", "read")

	srv.InjectFault("POST /api/v1/agenttrust/check", agenttrusttest.Fault{Status: 503, RetryAfter: "0", Times: 2})
	srv.ClearRequests()
	if r, err := c.Actions.Check(ctx, ActionCheckParams{AgentID: agentID, ToolName: "read_file"}); err != nil || !r.Allowed {
		t.Fatalf("check after two 503s: %+v %v", r, err)
	}
	if n := len(srv.Requests()); n != 3 {
		t.Errorf("%d requests, want 3", n)
	}

	srv.InjectFault("POST /api/v1/agents", agenttrusttest.Fault{Status: 503, Times: 1})
	srv.ClearRequests()
	if _, err := c.Agents.Create(ctx, AgentCreateParams{Name: "x"}); err == nil {
		t.Fatal("create succeeded through a 503")
	}
	if n := len(srv.Requests()); n != 1 {
		t.Errorf("create re-sent: %d requests", n)
	}

	srv.InjectFault("POST /api/v1/agent-tokens/issue", agenttrusttest.Fault{Drop: true, Times: 1})
	srv.ClearRequests()
	_, err := c.Tokens.Issue(ctx, TokenIssueParams{AgentID: agentID, Scopes: []string{"read"}})
	if !errors.Is(err, ErrNetwork) || len(srv.Requests()) != 1 {
		t.Errorf("dropped issue: %v, %d requests", err, len(srv.Requests()))
	}

	srv.InjectFault("GET /api/v1/agents/{agent_id}", agenttrusttest.Fault{Malformed: true})
	_, err = c.Agents.Get(ctx, agentID)
	if !errors.Is(err, ErrDecode) {
		t.Errorf("malformed: %v", err)
	}
	srv.ClearFaults()

	srv.InjectFault("GET /health", agenttrusttest.Fault{Latency: 5 * time.Second})
	slow := fakeClient(t, srv, WithTimeout(100*time.Millisecond))
	if _, err := slow.Health(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("slow health: %v", err)
	}
	srv.ClearFaults()

	srv.InjectFault("POST /api/v1/agenttrust/check", agenttrusttest.Fault{Status: 429, RetryAfter: "7"})
	_, err = fakeClient(t, srv, WithRetryPolicy(RetryPolicy{})).Actions.Check(ctx,
		ActionCheckParams{AgentID: agentID})
	var rl *RateLimitError
	if !errors.As(err, &rl) || rl.RetryAfter != 7*time.Second {
		t.Errorf("429: %v", err)
	}
}

func TestFakeGatewayTokenClock(t *testing.T) {
	srv := agenttrusttest.NewTestServer(t)
	c := fakeClient(t, srv)
	ctx := context.Background()
	agentID := srv.CreateAgent("bot", "read")
	tok, err := c.Tokens.Issue(ctx, TokenIssueParams{AgentID: agentID, Scopes: []string{"read"}, TTLSeconds: 60})
	if err != nil {
		t.Fatal(err)
	}
	srv.Advance(2 * time.Minute)
	in, err := c.Tokens.Introspect(ctx, TokenIntrospectParams{Token: tok.Token})
	if err != nil || in.Active || in.Reasoning == "" {
		t.Errorf("expired token: %+v %v", in, err)
	}
}
