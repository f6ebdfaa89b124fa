package agenttrusttest

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func checkBody(agentID, session, tool string) string {
	return fmt.Sprintf(`{"agent_id": %q, "session_id": %q, "action_name": %q, "action_source": "api", "action_input_summary": ""}`, agentID, session, tool)
}

func TestCheckPolicy(t *testing.T) {
	srv := NewTestServer(t, WithPolicy(Policy{Deny: map[string]string{"rm": "destructive"}}))
	c := newClient(t, srv)
	agentID := srv.CreateAgent("bot")
	revoked := srv.CreateAgent("gone")
	c.gw("POST", "/api/v1/agents/"+revoked+"/revoke", `{"reason": "test"}`).must(t, 200)
	srv.DenyTool("drop_table", "no schema changes")

	cases := []struct {
		agent, tool string
		allowed     bool
		reason      string
	}{
		{agentID, "read_file", true, "allowed by policy"},
		{agentID, "rm", false, "destructive"},
		{agentID, "drop_table", false, "no schema changes"},
		{"agent-unknown", "read_file", false, "unknown agent"},
		{revoked, "read_file", false, "agent revoked"},
	}
	ids := map[string]bool{}
	for _, tc := range cases {
		r := c.auth("POST", "/api/v1/agenttrust/check", checkBody(tc.agent, "", tc.tool)).must(t, 200)
		assert.Equal(t, tc.allowed, r.json["allowed"], "%s/%s: %s", tc.agent, tc.tool, r.raw)
		assert.Equal(t, tc.reason, r.str("reason"), "%s/%s: %s", tc.agent, tc.tool, r.raw)
		assert.Equal(t, "fast", r.str("guard_tier"), "fixed fields: %s", r.raw)
		assert.Equal(t, 0.99, r.json["confidence"], "fixed fields: %s", r.raw)
		assert.Equal(t, float64(1), r.json["latency_ms"], "fixed fields: %s", r.raw)
		assert.Equal(t, false, r.json["elevation_required"], "fixed fields: %s", r.raw)
		id := r.str("check_id")
		assert.NotEqual(t, "", id, "check_id %q not unique", id)
		assert.False(t, ids[id], "check_id %q not unique", id)
		ids[id] = true
	}

	// AllowTool lifts a denial; SetPolicy replaces everything.
	srv.AllowTool("rm")
	r := c.auth("POST", "/api/v1/agenttrust/check", checkBody(agentID, "", "rm"))
	require.Equal(t, true, r.json["allowed"], "after AllowTool: %s", r.raw)
	srv.SetPolicy(Policy{})
	r = c.auth("POST", "/api/v1/agenttrust/check", checkBody(agentID, "", "drop_table"))
	require.Equal(t, true, r.json["allowed"], "after SetPolicy: %s", r.raw)

	checks := srv.Checks()
	require.Len(t, checks, len(cases)+2, "checks %v", checks)
	require.Equal(t, "rm", checks[1].ActionName, "checks %v", checks)
	require.Equal(t, "api", checks[0].ActionSource, "checks %v", checks)
}

func TestCheckElevation(t *testing.T) {
	srv := NewTestServer(t)
	c := newClient(t, srv)
	agentID := srv.CreateAgent("bot")
	srv.RequireElevation("deploy")

	first := c.auth("POST", "/api/v1/agenttrust/check", checkBody(agentID, "s1", "deploy")).must(t, 200)
	apID := first.str("approval_id")
	require.Equal(t, false, first.json["allowed"], "first check %s", first.raw)
	require.Equal(t, true, first.json["elevation_required"], "first check %s", first.raw)
	require.NotEqual(t, "", apID, "first check %s", first.raw)
	ap := c.gw("GET", "/mcp/approvals/"+apID, "").must(t, 200)
	require.Equal(t, "pending", ap.str("status"), "approval %s", ap.raw)
	require.Equal(t, "s1", ap.str("session_id"), "approval %s", ap.raw)
	require.Equal(t, agentID, ap.str("agent_id"), "approval %s", ap.raw)
	require.Equal(t, "deploy", ap.str("action_name"), "approval %s", ap.raw)
	require.Equal(t, apID, ap.str("id"), "approval %s", ap.raw)
	// While pending, the same approval is returned.
	again := c.auth("POST", "/api/v1/agenttrust/check", checkBody(agentID, "s1", "deploy"))
	require.Equal(t, apID, again.str("approval_id"), "second check %s", again.raw)
	r := c.gw("POST", "/mcp/approvals/"+apID+"/approve", `{"decided_by": "alice"}`).must(t, 200)
	require.Equal(t, "approved", r.str("status"), "approve %s", r.raw)
	c.gw("POST", "/mcp/approvals/"+apID+"/deny", `{"decided_by": "bob"}`).must(t, 409)
	ap = c.gw("GET", "/mcp/approvals/"+apID, "")
	require.Equal(t, "approved", ap.str("status"), "approval after approve %s", ap.raw)
	require.Equal(t, "alice", ap.str("decided_by"), "approval after approve %s", ap.raw)
	r = c.auth("POST", "/api/v1/agenttrust/check", checkBody(agentID, "s1", "deploy"))
	require.Equal(t, true, r.json["allowed"], "check after approve %s", r.raw)

	// Another session needs its own approval; denying it denies the tool.
	other := c.auth("POST", "/api/v1/agenttrust/check", checkBody(agentID, "s2", "deploy"))
	otherID := other.str("approval_id")
	require.Equal(t, true, other.json["elevation_required"], "other session %s", other.raw)
	require.NotEqual(t, apID, otherID, "other session %s", other.raw)
	c.gw("POST", "/mcp/approvals/"+otherID+"/deny", `{"decided_by": "bob"}`).must(t, 200)
	r = c.auth("POST", "/api/v1/agenttrust/check", checkBody(agentID, "s2", "deploy"))
	require.Equal(t, false, r.json["allowed"], "check after deny %s", r.raw)
	require.Equal(t, "approval denied", r.str("reason"), "check after deny %s", r.raw)
	require.Equal(t, false, r.json["elevation_required"], "check after deny %s", r.raw)
	c.gw("GET", "/mcp/approvals/apr-999", "").must(t, 404)
	c.gw("POST", "/mcp/approvals/apr-999/approve", `{"decided_by": "x"}`).must(t, 404)
}

func TestCheckSessionCounters(t *testing.T) {
	srv := NewTestServer(t)
	c := newClient(t, srv)
	agentID := srv.CreateAgent("bot", "read")
	srv.DenyTool("rm", "no")
	se := c.gw("POST", "/mcp/sessions/init", fmt.Sprintf(`{"agent_id": %q, "server_id": "srv-1"}`, agentID)).must(t, 200)
	sid := se.str("session_id")
	require.Equal(t, "mcp", se.str("source"), "session %s", se.raw)
	require.Equal(t, "read_only", se.str("mode"), "session %s", se.raw)
	require.Equal(t, "srv-1", se.str("server_id"), "session %s", se.raw)
	require.NotEqual(t, "", sid, "session %s", se.raw)
	body := func(tool, effect string) string {
		return fmt.Sprintf(`{"agent_id": %q, "session_id": %q, "action_name": %q, "action_source": "api", "action_input_summary": "", "action_effect": %q}`, agentID, sid, tool, effect)
	}
	c.auth("POST", "/api/v1/agenttrust/check", body("cat", "read")).must(t, 200)
	c.auth("POST", "/api/v1/agenttrust/check", body("write", "mutating")).must(t, 200)
	c.auth("POST", "/api/v1/agenttrust/check", body("rm", "destructive")).must(t, 200)
	got := c.gw("GET", "/mcp/sessions/"+sid, "").must(t, 200)
	for k, want := range map[string]float64{"total_calls": 3, "read_calls": 1, "write_calls": 1, "denied_calls": 1} {
		assert.Equal(t, want, got.json[k], "%s = %v, want %v", k, got.json[k], want)
	}
	c.gw("GET", "/mcp/sessions/sess-404", "").must(t, 404)
	c.gw("POST", "/mcp/sessions/init", `{"agent_id": "nobody", "server_id": "srv-1"}`).must(t, 404)
}
