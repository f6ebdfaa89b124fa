package agenttrusttest

import (
	"fmt"
	"testing"
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
		if r.json["allowed"] != tc.allowed || r.str("reason") != tc.reason {
			t.Errorf("%s/%s: %s", tc.agent, tc.tool, r.raw)
		}
		if r.str("guard_tier") != "fast" || r.json["confidence"] != 0.99 || r.json["latency_ms"] != float64(1) || r.json["elevation_required"] != false {
			t.Errorf("fixed fields: %s", r.raw)
		}
		id := r.str("check_id")
		if id == "" || ids[id] {
			t.Errorf("check_id %q not unique", id)
		}
		ids[id] = true
	}

	// AllowTool lifts a denial; SetPolicy replaces everything.
	srv.AllowTool("rm")
	if r := c.auth("POST", "/api/v1/agenttrust/check", checkBody(agentID, "", "rm")); r.json["allowed"] != true {
		t.Fatalf("after AllowTool: %s", r.raw)
	}
	srv.SetPolicy(Policy{})
	if r := c.auth("POST", "/api/v1/agenttrust/check", checkBody(agentID, "", "drop_table")); r.json["allowed"] != true {
		t.Fatalf("after SetPolicy: %s", r.raw)
	}

	checks := srv.Checks()
	if len(checks) != len(cases)+2 || checks[1].ActionName != "rm" || checks[0].ActionSource != "api" {
		t.Fatalf("checks %v", checks)
	}
}

func TestCheckElevation(t *testing.T) {
	srv := NewTestServer(t)
	c := newClient(t, srv)
	agentID := srv.CreateAgent("bot")
	srv.RequireElevation("deploy")

	first := c.auth("POST", "/api/v1/agenttrust/check", checkBody(agentID, "s1", "deploy")).must(t, 200)
	apID := first.str("approval_id")
	if first.json["allowed"] != false || first.json["elevation_required"] != true || apID == "" {
		t.Fatalf("first check %s", first.raw)
	}
	ap := c.gw("GET", "/mcp/approvals/"+apID, "").must(t, 200)
	if ap.str("status") != "pending" || ap.str("session_id") != "s1" || ap.str("agent_id") != agentID || ap.str("action_name") != "deploy" || ap.str("id") != apID {
		t.Fatalf("approval %s", ap.raw)
	}
	// While pending, the same approval is returned.
	again := c.auth("POST", "/api/v1/agenttrust/check", checkBody(agentID, "s1", "deploy"))
	if again.str("approval_id") != apID {
		t.Fatalf("second check %s", again.raw)
	}
	r := c.gw("POST", "/mcp/approvals/"+apID+"/approve", `{"decided_by": "alice"}`).must(t, 200)
	if r.str("status") != "approved" {
		t.Fatalf("approve %s", r.raw)
	}
	c.gw("POST", "/mcp/approvals/"+apID+"/deny", `{"decided_by": "bob"}`).must(t, 409)
	if ap := c.gw("GET", "/mcp/approvals/"+apID, ""); ap.str("status") != "approved" || ap.str("decided_by") != "alice" {
		t.Fatalf("approval after approve %s", ap.raw)
	}
	if r := c.auth("POST", "/api/v1/agenttrust/check", checkBody(agentID, "s1", "deploy")); r.json["allowed"] != true {
		t.Fatalf("check after approve %s", r.raw)
	}

	// Another session needs its own approval; denying it denies the tool.
	other := c.auth("POST", "/api/v1/agenttrust/check", checkBody(agentID, "s2", "deploy"))
	otherID := other.str("approval_id")
	if other.json["elevation_required"] != true || otherID == apID {
		t.Fatalf("other session %s", other.raw)
	}
	c.gw("POST", "/mcp/approvals/"+otherID+"/deny", `{"decided_by": "bob"}`).must(t, 200)
	r = c.auth("POST", "/api/v1/agenttrust/check", checkBody(agentID, "s2", "deploy"))
	if r.json["allowed"] != false || r.str("reason") != "approval denied" || r.json["elevation_required"] != false {
		t.Fatalf("check after deny %s", r.raw)
	}
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
	if se.str("source") != "mcp" || se.str("mode") != "read_only" || se.str("server_id") != "srv-1" || sid == "" {
		t.Fatalf("session %s", se.raw)
	}
	body := func(tool, effect string) string {
		return fmt.Sprintf(`{"agent_id": %q, "session_id": %q, "action_name": %q, "action_source": "api", "action_input_summary": "", "action_effect": %q}`, agentID, sid, tool, effect)
	}
	c.auth("POST", "/api/v1/agenttrust/check", body("cat", "read")).must(t, 200)
	c.auth("POST", "/api/v1/agenttrust/check", body("write", "mutating")).must(t, 200)
	c.auth("POST", "/api/v1/agenttrust/check", body("rm", "destructive")).must(t, 200)
	got := c.gw("GET", "/mcp/sessions/"+sid, "").must(t, 200)
	for k, want := range map[string]float64{"total_calls": 3, "read_calls": 1, "write_calls": 1, "denied_calls": 1} {
		if got.json[k] != want {
			t.Errorf("%s = %v, want %v", k, got.json[k], want)
		}
	}
	c.gw("GET", "/mcp/sessions/sess-404", "").must(t, 404)
	c.gw("POST", "/mcp/sessions/init", `{"agent_id": "nobody", "server_id": "srv-1"}`).must(t, 404)
}
