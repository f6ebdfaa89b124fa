package agenttrusttest

import (
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var tokenFormat = regexp.MustCompile(`^at_[A-Za-z0-9_-]{43,}$`)

func issueBody(agentID string, ttl int, scopes ...string) string {
	if scopes == nil {
		scopes = []string{}
	}
	return fmt.Sprintf(`{"agent_id": %q, "scopes": %s, "ttl": %d}`, agentID, jsonStrings(scopes), ttl)
}

func jsonStrings(v []string) string {
	out := "["
	for i, s := range v {
		if i > 0 {
			out += ", "
		}
		out += fmt.Sprintf("%q", s)
	}
	return out + "]"
}

func introspectBody(token string, target *string, scopes ...string) string {
	t := "null"
	if target != nil {
		t = fmt.Sprintf("%q", *target)
	}
	if scopes == nil {
		scopes = []string{}
	}
	return fmt.Sprintf(`{"token": %q, "target": %s, "required_scopes": %s}`, token, t, jsonStrings(scopes))
}

func TestTokenIssueAndExpiry(t *testing.T) {
	start := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	srv := NewTestServer(t, WithClock(func() time.Time { return start }))
	c := newClient(t, srv)
	agentID := srv.CreateAgent("bot", "read", "write")

	tok := c.auth("POST", "/api/v1/agent-tokens/issue", issueBody(agentID, 300, "read")).must(t, 200)
	value := tok.str("token")
	require.True(t, tokenFormat.MatchString(value), "token %q", value)
	require.Equal(t, "2026-03-01T10:05:00Z", tok.str("expires_at"), "token reply %s", tok.raw)
	require.Equal(t, "2026-03-01T10:00:00Z", tok.str("issued_at"), "token reply %s", tok.raw)
	require.Equal(t, agentID, tok.str("agent_id"), "token reply %s", tok.raw)
	require.NotEqual(t, "", tok.str("token_id"), "token reply %s", tok.raw)
	got := strs(tok.json["scope"])
	require.Len(t, got, 1, "scope %v", got)
	require.Equal(t, "read", got[0], "scope %v", got)
	other := c.auth("POST", "/api/v1/agent-tokens/issue", issueBody(agentID, 300, "read")).must(t, 200)
	require.NotEqual(t, value, other.str("token"), "two issues gave the same token")

	introspect := func() resp {
		return c.auth("POST", "/api/v1/agent-tokens/introspect", introspectBody(value, nil)).must(t, 200)
	}
	r := introspect()
	require.Equal(t, true, r.json["active"], "introspect %s", r.raw)
	require.Equal(t, agentID, r.str("agent_id"), "introspect %s", r.raw)
	require.Equal(t, DefaultOrgID, r.str("org_id"), "introspect %s", r.raw)
	require.Equal(t, "2026-03-01T10:05:00Z", r.str("expires_at"), "introspect %s", r.raw)
	// Exactly at expires_at the token is still valid; one second later not.
	srv.Advance(300 * time.Second)
	r = introspect()
	require.Equal(t, true, r.json["active"], "at expiry: %s", r.raw)
	srv.Advance(time.Second)
	r = introspect()
	require.Equal(t, false, r.json["active"], "after expiry: %s", r.raw)
	require.Equal(t, "token expired", r.str("reasoning"), "after expiry: %s", r.raw)
	now := srv.Now()
	require.True(t, now.Equal(start.Add(301*time.Second)), "Now %v", now)
	// SetClock resets the offset.
	srv.SetClock(func() time.Time { return start })
	r = introspect()
	require.Equal(t, true, r.json["active"], "after SetClock: %s", r.raw)
}

func TestTokenRules(t *testing.T) {
	srv := NewTestServer(t)
	c := newClient(t, srv)
	agentID := srv.CreateAgent("bot", "read")
	bound := srv.SeedAgent(AgentSeed{Name: "bound", Capabilities: []string{"read"}, Metadata: map[string]any{"allowed_targets": []any{"svc-a"}}})

	r := c.auth("POST", "/api/v1/agent-tokens/issue", issueBody(agentID, 60, "read", "admin")).must(t, 403)
	require.Equal(t, `scope "admin" is not within the agent's capabilities`, r.errMsg(), "error %q", r.errMsg())
	c.auth("POST", "/api/v1/agent-tokens/issue", issueBody("nobody", 60)).must(t, 404)
	c.auth("POST", "/api/v1/agent-tokens/issue", issueBody(agentID, 0)).must(t, 400)
	c.auth("POST", "/api/v1/agent-tokens/issue", fmt.Sprintf(`{"agent_id": %q, "scopes": [], "ttl": 60, "session_id": ""}`, agentID)).must(t, 400)

	inactive := func(token string, target *string, want string, scopes ...string) {
		t.Helper()
		r := c.auth("POST", "/api/v1/agent-tokens/introspect", introspectBody(token, target, scopes...)).must(t, 200)
		require.Equal(t, false, r.json["active"], "introspect: %s, want reasoning %q", r.raw, want)
		require.Equal(t, want, r.str("reasoning"), "introspect: %s, want reasoning %q", r.raw, want)
	}
	inactive("at_unknown", nil, "unknown token")

	tok := c.auth("POST", "/api/v1/agent-tokens/issue", issueBody(agentID, 60, "read")).must(t, 200).str("token")
	inactive(tok, nil, "scope missing: write", "read", "write")
	svcB, svcA := "svc-b", "svc-a"
	// An agent without allowed_targets accepts any target.
	r = c.auth("POST", "/api/v1/agent-tokens/introspect", introspectBody(tok, &svcB, "read"))
	require.Equal(t, true, r.json["active"], "unrestricted target: %s", r.raw)
	btok := c.auth("POST", "/api/v1/agent-tokens/issue", issueBody(bound, 60)).must(t, 200).str("token")
	inactive(btok, &svcB, "target mismatch")
	r = c.auth("POST", "/api/v1/agent-tokens/introspect", introspectBody(btok, &svcA))
	require.Equal(t, true, r.json["active"], "allowed target: %s", r.raw)

	// Revoking the token, then revoking the agent.
	c.auth("POST", "/api/v1/agent-tokens/revoke", fmt.Sprintf(`{"token": %q, "reason": "manual_revocation"}`, tok)).must(t, 200)
	inactive(tok, nil, "token revoked")
	c.auth("POST", "/api/v1/agent-tokens/revoke", `{"token": "at_nope", "reason": "manual_revocation"}`).must(t, 404)

	c.gw("POST", "/api/v1/agents/"+bound+"/revoke", `{"reason": "compromised"}`).must(t, 200)
	inactive(btok, nil, "agent revoked")
	c.auth("POST", "/api/v1/agent-tokens/issue", issueBody(bound, 60)).must(t, 403)
	a := c.gw("GET", "/api/v1/agents/"+bound, "").must(t, 200)
	require.Equal(t, "revoked", a.json["agent"].(map[string]any)["status"], "agent %s", a.raw)

	// API sessions need an active at_ token.
	tok2 := c.auth("POST", "/api/v1/agent-tokens/issue", issueBody(agentID, 60, "read")).must(t, 200).str("token")
	se := c.gw("POST", "/api/v1/agenttrust/api-sessions/init", fmt.Sprintf(`{"token": %q}`, tok2)).must(t, 200)
	require.Equal(t, "api", se.str("source"), "api session %s", se.raw)
	require.Equal(t, agentID, se.str("agent_id"), "api session %s", se.raw)
	c.gw("POST", "/api/v1/agenttrust/api-sessions/init", fmt.Sprintf(`{"token": %q}`, tok)).must(t, 401)
	c.gw("POST", "/api/v1/agenttrust/api-sessions/init", `{"token": "eyJhbGciOi.x.y"}`).must(t, 401)
}

func TestAgents(t *testing.T) {
	srv := NewTestServer(t)
	c := newClient(t, srv)
	create := func(body string) resp { return c.gw("POST", "/api/v1/agents", body) }

	r := create(`{"name": "billing-bot", "framework": "langchain", "capabilities": ["read_invoices"], "metadata": {"team": "a"}}`).must(t, 201)
	ag := r.json["agent"].(map[string]any)
	id, _ := ag["id"].(string)
	require.NotEqual(t, "", id, "agent %s", r.raw)
	require.Equal(t, "active", ag["status"], "agent %s", r.raw)
	require.Equal(t, "langchain", ag["framework"], "agent %s", r.raw)
	require.Equal(t, DefaultOrgID, ag["org_id"], "agent %s", r.raw)
	require.NotNil(t, ag["created_at"], "agent %s", r.raw)
	r = create(`{"name": "billing-bot", "framework": "custom", "capabilities": [], "metadata": {}}`)
	require.EqualValues(t, 409, r.status, "duplicate: %d %s", r.status, r.raw)
	// The same name in another org is fine; it is listed under that org.
	create(`{"name": "billing-bot", "framework": "custom", "capabilities": [], "metadata": {}, "org_id": "org-1"}`).must(t, 201)

	list := c.gw("GET", "/api/v1/agents", "").must(t, 200)
	n := len(list.json["agents"].([]any))
	require.EqualValues(t, 1, n, "default org lists %d agents", n)
	list = c.gw("GET", "/api/v1/agents?org_id=org-1", "").must(t, 200)
	got := list.json["agents"].([]any)
	require.Len(t, got, 1, "org-1 list %s", list.raw)
	require.Equal(t, "org-1", got[0].(map[string]any)["org_id"], "org-1 list %s", list.raw)
	c.gw("GET", "/api/v1/agents/nope", "").must(t, 404)
	c.gw("POST", "/api/v1/agents/nope/revoke", `{"reason": "x"}`).must(t, 404)
}
