package agenttrusttest

import (
	"fmt"
	"regexp"
	"testing"
	"time"
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
	if !tokenFormat.MatchString(value) {
		t.Fatalf("token %q", value)
	}
	if tok.str("expires_at") != "2026-03-01T10:05:00Z" || tok.str("issued_at") != "2026-03-01T10:00:00Z" || tok.str("agent_id") != agentID || tok.str("token_id") == "" {
		t.Fatalf("token reply %s", tok.raw)
	}
	if got := strs(tok.json["scope"]); len(got) != 1 || got[0] != "read" {
		t.Fatalf("scope %v", got)
	}
	other := c.auth("POST", "/api/v1/agent-tokens/issue", issueBody(agentID, 300, "read")).must(t, 200)
	if other.str("token") == value {
		t.Fatal("two issues gave the same token")
	}

	introspect := func() resp {
		return c.auth("POST", "/api/v1/agent-tokens/introspect", introspectBody(value, nil)).must(t, 200)
	}
	r := introspect()
	if r.json["active"] != true || r.str("agent_id") != agentID || r.str("org_id") != DefaultOrgID || r.str("expires_at") != "2026-03-01T10:05:00Z" {
		t.Fatalf("introspect %s", r.raw)
	}
	// Exactly at expires_at the token is still valid; one second later not.
	srv.Advance(300 * time.Second)
	if r := introspect(); r.json["active"] != true {
		t.Fatalf("at expiry: %s", r.raw)
	}
	srv.Advance(time.Second)
	if r := introspect(); r.json["active"] != false || r.str("reasoning") != "token expired" {
		t.Fatalf("after expiry: %s", r.raw)
	}
	if got := srv.Now(); !got.Equal(start.Add(301 * time.Second)) {
		t.Fatalf("Now %v", got)
	}
	// SetClock resets the offset.
	srv.SetClock(func() time.Time { return start })
	if r := introspect(); r.json["active"] != true {
		t.Fatalf("after SetClock: %s", r.raw)
	}
}

func TestTokenRules(t *testing.T) {
	srv := NewTestServer(t)
	c := newClient(t, srv)
	agentID := srv.CreateAgent("bot", "read")
	bound := srv.SeedAgent(AgentSeed{Name: "bound", Capabilities: []string{"read"}, Metadata: map[string]any{"allowed_targets": []any{"svc-a"}}})

	r := c.auth("POST", "/api/v1/agent-tokens/issue", issueBody(agentID, 60, "read", "admin")).must(t, 403)
	if r.errMsg() != `scope "admin" is not within the agent's capabilities` {
		t.Fatalf("error %q", r.errMsg())
	}
	c.auth("POST", "/api/v1/agent-tokens/issue", issueBody("nobody", 60)).must(t, 404)
	c.auth("POST", "/api/v1/agent-tokens/issue", issueBody(agentID, 0)).must(t, 400)
	c.auth("POST", "/api/v1/agent-tokens/issue", fmt.Sprintf(`{"agent_id": %q, "scopes": [], "ttl": 60, "session_id": ""}`, agentID)).must(t, 400)

	inactive := func(token string, target *string, want string, scopes ...string) {
		t.Helper()
		r := c.auth("POST", "/api/v1/agent-tokens/introspect", introspectBody(token, target, scopes...)).must(t, 200)
		if r.json["active"] != false || r.str("reasoning") != want {
			t.Fatalf("introspect: %s, want reasoning %q", r.raw, want)
		}
	}
	inactive("at_unknown", nil, "unknown token")

	tok := c.auth("POST", "/api/v1/agent-tokens/issue", issueBody(agentID, 60, "read")).must(t, 200).str("token")
	inactive(tok, nil, "scope missing: write", "read", "write")
	svcB, svcA := "svc-b", "svc-a"
	// An agent without allowed_targets accepts any target.
	if r := c.auth("POST", "/api/v1/agent-tokens/introspect", introspectBody(tok, &svcB, "read")); r.json["active"] != true {
		t.Fatalf("unrestricted target: %s", r.raw)
	}
	btok := c.auth("POST", "/api/v1/agent-tokens/issue", issueBody(bound, 60)).must(t, 200).str("token")
	inactive(btok, &svcB, "target mismatch")
	if r := c.auth("POST", "/api/v1/agent-tokens/introspect", introspectBody(btok, &svcA)); r.json["active"] != true {
		t.Fatalf("allowed target: %s", r.raw)
	}

	// Revoking the token, then revoking the agent.
	c.auth("POST", "/api/v1/agent-tokens/revoke", fmt.Sprintf(`{"token": %q, "reason": "manual_revocation"}`, tok)).must(t, 200)
	inactive(tok, nil, "token revoked")
	c.auth("POST", "/api/v1/agent-tokens/revoke", `{"token": "at_nope", "reason": "manual_revocation"}`).must(t, 404)

	c.gw("POST", "/api/v1/agents/"+bound+"/revoke", `{"reason": "compromised"}`).must(t, 200)
	inactive(btok, nil, "agent revoked")
	c.auth("POST", "/api/v1/agent-tokens/issue", issueBody(bound, 60)).must(t, 403)
	if a := c.gw("GET", "/api/v1/agents/"+bound, "").must(t, 200); a.json["agent"].(map[string]any)["status"] != "revoked" {
		t.Fatalf("agent %s", a.raw)
	}

	// API sessions need an active at_ token.
	tok2 := c.auth("POST", "/api/v1/agent-tokens/issue", issueBody(agentID, 60, "read")).must(t, 200).str("token")
	se := c.gw("POST", "/api/v1/agenttrust/api-sessions/init", fmt.Sprintf(`{"token": %q}`, tok2)).must(t, 200)
	if se.str("source") != "api" || se.str("agent_id") != agentID {
		t.Fatalf("api session %s", se.raw)
	}
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
	if id == "" || ag["status"] != "active" || ag["framework"] != "langchain" || ag["org_id"] != DefaultOrgID || ag["created_at"] == nil {
		t.Fatalf("agent %s", r.raw)
	}
	if r := create(`{"name": "billing-bot", "framework": "custom", "capabilities": [], "metadata": {}}`); r.status != 409 {
		t.Fatalf("duplicate: %d %s", r.status, r.raw)
	}
	// The same name in another org is fine; it is listed under that org.
	create(`{"name": "billing-bot", "framework": "custom", "capabilities": [], "metadata": {}, "org_id": "org-1"}`).must(t, 201)

	list := c.gw("GET", "/api/v1/agents", "").must(t, 200)
	if n := len(list.json["agents"].([]any)); n != 1 {
		t.Fatalf("default org lists %d agents", n)
	}
	list = c.gw("GET", "/api/v1/agents?org_id=org-1", "").must(t, 200)
	if got := list.json["agents"].([]any); len(got) != 1 || got[0].(map[string]any)["org_id"] != "org-1" {
		t.Fatalf("org-1 list %s", list.raw)
	}
	c.gw("GET", "/api/v1/agents/nope", "").must(t, 404)
	c.gw("POST", "/api/v1/agents/nope/revoke", `{"reason": "x"}`).must(t, 404)
}
