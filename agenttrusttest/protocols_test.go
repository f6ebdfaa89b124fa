package agenttrusttest

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestAgentCards(t *testing.T) {
	srv := NewTestServer(t)
	c := newClient(t, srv)
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	der, _ := x509.MarshalPKIXPublicKey(pub)
	pemKey := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	id := srv.SeedAgent(AgentSeed{Name: "carded", Capabilities: []string{"search"}, PublicKey: pemKey})
	plain := srv.CreateAgent("plain")

	c.gw("GET", "/api/v1/agents/"+id+"/card", "").must(t, 404)
	c.gw("GET", "/a2a/agents/"+id+"/agent.json", "").must(t, 404)
	card := c.gw("POST", "/api/v1/agents/"+id+"/card", "").must(t, 200)
	require.Equal(t, "carded", card.str("name"), "card %s", card.raw)
	require.Nil(t, card.json["signatures"], "card %s", card.raw)
	iface := card.json["supportedInterfaces"].([]any)[0].(map[string]any)
	require.Equal(t, srv.URL()+"/a2a/agents/"+id, iface["url"], "interface %v", iface)
	require.Equal(t, "jsonrpc", iface["protocolBinding"], "interface %v", iface)
	require.Equal(t, DefaultOrgID, iface["tenant"], "interface %v", iface)
	ext := card.json["capabilities"].(map[string]any)["extensions"].([]any)[0].(map[string]any)
	params := ext["params"].(map[string]any)
	require.Equal(t, TrustExtensionURI, ext["uri"], "extension %v", ext)
	require.Equal(t, 0.9, params["ati_trust_score"], "extension %v", ext)
	key := params["ati_agent_key"].(map[string]any)
	require.Equal(t, "OKP", key["kty"], "agent key %v", key)
	require.Equal(t, "Ed25519", key["crv"], "agent key %v", key)
	require.Equal(t, base64.RawURLEncoding.EncodeToString(pub), key["x"], "agent key %v", key)
	skills := card.json["skills"].([]any)
	require.Len(t, skills, 1, "skills %v", skills)
	require.Equal(t, "search", skills[0].(map[string]any)["id"], "skills %v", skills)
	c.gw("GET", "/api/v1/agents/"+id+"/card", "").must(t, 200)

	pubd := c.gw("PUT", "/api/v1/agents/"+id+"/card/publish", "").must(t, 200)
	sigs, _ := pubd.json["signatures"].([]any)
	require.Len(t, sigs, 1, "published card %s", pubd.raw)
	c.key = "" // the public card needs no key
	c.gw("GET", "/a2a/agents/"+id+"/agent.json", "").must(t, 200)
	c.key = srv.APIKey()

	// No key on an agent without one; publish generates the card.
	p := c.gw("PUT", "/api/v1/agents/"+plain+"/card/publish", "").must(t, 200)
	pext := p.json["capabilities"].(map[string]any)["extensions"].([]any)[0].(map[string]any)
	_, has := pext["params"].(map[string]any)["ati_agent_key"]
	require.False(t, has, "plain agent card has a key: %v", pext)
	c.gw("POST", "/api/v1/agents/nobody/card", "").must(t, 404)
}

func rpc(method, params string) string {
	return fmt.Sprintf(`{"jsonrpc": "2.0", "id": 1, "method": %q, "params": %s}`, method, params)
}

func rpcErrCode(t *testing.T, r resp) float64 {
	t.Helper()
	e, ok := r.json["error"].(map[string]any)
	require.True(t, ok, "no JSON-RPC error in %s", r.raw)
	return e["code"].(float64)
}

func TestA2A(t *testing.T) {
	srv := NewTestServer(t)
	c := newClient(t, srv)
	a, b := srv.CreateAgent("a"), srv.CreateAgent("b")

	sent := c.gw("POST", "/a2a", rpc("tasks/send", fmt.Sprintf(`{"source_agent_id": %q, "target_agent_id": %q, "message": "hi"}`, a, b))).must(t, 200)
	task := sent.json["result"].(map[string]any)
	taskID, _ := task["id"].(string)
	require.NotEqual(t, "", taskID, "send %s", sent.raw)
	require.Equal(t, "pending", task["status"], "send %s", sent.raw)
	require.Equal(t, "hi", task["message"], "send %s", sent.raw)
	require.Equal(t, float64(1), sent.json["id"], "send %s", sent.raw)
	got := c.gw("POST", "/a2a", rpc("tasks/get", fmt.Sprintf(`{"task_id": %q}`, taskID))).must(t, 200)
	require.Equal(t, taskID, got.json["result"].(map[string]any)["id"], "get %s", got.raw)
	cancelled := c.gw("POST", "/a2a", rpc("tasks/cancel", fmt.Sprintf(`{"task_id": %q}`, taskID))).must(t, 200)
	require.Equal(t, "cancelled", cancelled.json["result"].(map[string]any)["status"], "cancel %s", cancelled.raw)
	code := rpcErrCode(t, c.gw("POST", "/a2a", rpc("tasks/cancel", fmt.Sprintf(`{"task_id": %q}`, taskID))))
	require.EqualValues(t, a2aNotCancelable, code, "cancel twice: code %v", code)
	code = rpcErrCode(t, c.gw("POST", "/a2a", rpc("tasks/get", `{"task_id": "task-404"}`)))
	require.EqualValues(t, a2aTaskNotFound, code, "unknown task: code %v", code)
	code = rpcErrCode(t, c.gw("POST", "/a2a", rpc("tasks/get", `{"id": "x"}`)))
	require.EqualValues(t, rpcInvalidParams, code, "A2A-style id param: code %v", code)
	code = rpcErrCode(t, c.gw("POST", "/a2a", rpc("tasks/resubscribe", `{}`)))
	require.EqualValues(t, rpcMethodNotFound, code, "unknown method: code %v", code)
	code = rpcErrCode(t, c.gw("POST", "/a2a", rpc("tasks/send", fmt.Sprintf(`{"source_agent_id": %q, "target_agent_id": "ghost", "message": "x"}`, a))))
	require.EqualValues(t, rpcInvalidParams, code, "unknown target: code %v", code)
	// Envelope errors are HTTP 400.
	r := c.gw("POST", "/a2a", `{"jsonrpc": "2.0", "id": 1, "method": "tasks/get"}`).must(t, 400)
	require.Equal(t, `missing required key "params"`, r.errMsg(), "no params: %s", r.raw)
	c.gw("POST", "/a2a", `{"jsonrpc": "2.0", "id": "1", "method": "tasks/get", "params": {}}`).must(t, 400)
}

func TestA2AMessageSend(t *testing.T) {
	srv := NewTestServer(t)
	c := newClient(t, srv)
	id := srv.CreateAgent("echoer")
	msg := `{"message": {"role": "user", "parts": [{"kind": "text", "text": "hi"}], "messageId": "0b0f7c1e-3a9d-4c1b-9a57-2f7d0b3c9e11"}}`
	r := c.gw("POST", "/a2a/agents/"+id, rpc("message/send", msg)).must(t, 200)
	res := r.json["result"].(map[string]any)
	status := res["status"].(map[string]any)
	require.NotEqual(t, "", res["id"], "task %s", r.raw)
	require.NotEqual(t, "", res["contextId"], "task %s", r.raw)
	require.Equal(t, "completed", status["state"], "task %s", r.raw)
	require.NotEqual(t, "", status["timestamp"], "task %s", r.raw)
	history := res["history"].([]any)
	require.Len(t, history, 2, "history %v", history)
	require.Equal(t, "0b0f7c1e-3a9d-4c1b-9a57-2f7d0b3c9e11", history[0].(map[string]any)["messageId"], "history %v", history)
	reply := history[1].(map[string]any)["parts"].([]any)[0].(map[string]any)
	require.Equal(t, "echo: hi", reply["text"], "reply %v", reply)
	require.Len(t, res["artifacts"].([]any), 1, "reply %v", reply)
	// Continuing the task appends to it.
	cont := fmt.Sprintf(`{"message": {"role": "user", "parts": [{"kind": "text", "text": "again"}], "messageId": "m2", "taskId": %q}}`, res["id"])
	r2 := c.gw("POST", "/a2a/agents/"+id, rpc("message/send", cont)).must(t, 200)
	res2 := r2.json["result"].(map[string]any)
	require.Equal(t, res["id"], res2["id"], "continued %s", r2.raw)
	require.Len(t, res2["history"].([]any), 4, "continued %s", r2.raw)
	bad := `{"message": {"role": "user", "parts": [], "messageId": "m", "contextId": "c"}}`
	code := rpcErrCode(t, c.gw("POST", "/a2a/agents/"+id, rpc("message/send", bad)))
	require.EqualValues(t, rpcInvalidParams, code, "extra key: code %v", code)
	code = rpcErrCode(t, c.gw("POST", "/a2a/agents/"+id, rpc("message/send", `{"message": {"role": "user", "parts": [], "messageId": "m", "taskId": "task-404"}}`)))
	require.EqualValues(t, a2aTaskNotFound, code, "unknown taskId: code %v", code)
	c.gw("POST", "/a2a/agents/nobody", rpc("message/send", msg)).must(t, 404)
}

func TestDelegations(t *testing.T) {
	srv := NewTestServer(t)
	c := newClient(t, srv)
	a := srv.CreateAgent("a", "read", "write")
	b := srv.CreateAgent("b")
	d := srv.CreateAgent("d")
	create := func(from, to, scope string, extra string) resp {
		return c.gw("POST", "/api/v1/delegations", fmt.Sprintf(`{"from_agent_id": %q, "to_agent_id": %q, "scope": %s, "ttl_seconds": 3600%s}`, from, to, scope, extra))
	}
	root := create(a, b, `["read", "write"]`, `, "restrictions": {}`).must(t, 201).json["delegation"].(map[string]any)
	rootID := root["id"].(string)
	got := strs(root["delegation_chain"])
	require.Len(t, got, 1, "root chain %v", got)
	require.Equal(t, rootID, got[0], "root chain %v", got)
	r := create(a, b, `["admin"]`, "")
	require.EqualValues(t, 403, r.status, "beyond capabilities: %d %s", r.status, r.raw)
	require.Equal(t, `scope "admin" exceeds the delegator's capabilities`, r.errMsg(), "beyond capabilities: %d %s", r.status, r.raw)
	child := create(b, d, `["read"]`, fmt.Sprintf(`, "parent_delegation_id": %q`, rootID)).must(t, 201).json["delegation"].(map[string]any)
	got = strs(child["delegation_chain"])
	require.Len(t, got, 2, "child chain %v", got)
	require.Equal(t, rootID, got[0], "child chain %v", got)
	require.Equal(t, child["id"], got[1], "child chain %v", got)
	r = create(b, d, `["delete"]`, fmt.Sprintf(`, "parent_delegation_id": %q`, rootID))
	require.EqualValues(t, 403, r.status, "beyond parent: %d %s", r.status, r.raw)
	require.Equal(t, `scope "delete" exceeds the parent delegation's scope`, r.errMsg(), "beyond parent: %d %s", r.status, r.raw)
	create(d, b, `["read"]`, fmt.Sprintf(`, "parent_delegation_id": %q`, rootID)).must(t, 403) // not granted to d
	create(b, d, `[]`, `, "parent_delegation_id": "del-404"`).must(t, 404)
	create(a, b, `[]`, `, "parent_delegation_id": null`).must(t, 400)

	se := c.gw("POST", "/api/v1/delegations/"+child["id"].(string)+"/session", "").must(t, 200)
	require.Equal(t, "a2a", se.str("source"), "session %s", se.raw)
	require.Equal(t, "read_only", se.str("mode"), "session %s", se.raw)
	require.Equal(t, child["id"], se.str("delegation_id"), "session %s", se.raw)
	require.Equal(t, d, se.str("agent_id"), "session %s", se.raw)
	l := c.gw("GET", "/api/v1/delegations", "").must(t, 200)
	require.Len(t, l.json["delegations"].([]any), 2, "list %s", l.raw)
	// Revoking the root revokes the child too.
	c.gw("DELETE", "/api/v1/delegations/"+rootID, "").must(t, 204)
	c.gw("POST", "/api/v1/delegations/"+child["id"].(string)+"/session", "").must(t, 403)
	c.gw("DELETE", "/api/v1/delegations/del-404", "").must(t, 404)
}

func TestDelegationExpiry(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	srv := NewTestServer(t, WithClock(func() time.Time { return now }))
	c := newClient(t, srv)
	a, b := srv.CreateAgent("a", "read"), srv.CreateAgent("b")
	del := c.gw("POST", "/api/v1/delegations", fmt.Sprintf(`{"from_agent_id": %q, "to_agent_id": %q, "scope": ["read"], "ttl_seconds": 60}`, a, b)).must(t, 201)
	id := del.json["delegation"].(map[string]any)["id"].(string)
	srv.Advance(61 * time.Second)
	r := c.gw("POST", "/api/v1/delegations/"+id+"/session", "").must(t, 403)
	require.Equal(t, "delegation expired", r.errMsg(), "expired: %s", r.raw)
}

func TestFederation(t *testing.T) {
	srv := NewTestServer(t)
	c := newClient(t, srv)
	agentID := srv.CreateAgent("fed", "read")
	const issuer = "https://idp.example.com"

	p := c.gw("POST", "/api/v1/federation/providers", fmt.Sprintf(`{"issuer": %q, "name": "IdP", "trust_level": "high"}`, issuer)).must(t, 201)
	prov := p.json["provider"].(map[string]any)
	require.Equal(t, issuer, prov["issuer"], "provider %s", p.raw)
	require.Equal(t, "high", prov["trust_level"], "provider %s", p.raw)
	require.Equal(t, "active", prov["status"], "provider %s", p.raw)
	c.gw("POST", "/api/v1/federation/providers", fmt.Sprintf(`{"issuer": %q, "name": "again"}`, issuer)).must(t, 409)
	l := c.gw("GET", "/api/v1/federation/providers", "").must(t, 200)
	elems := l.json["providers"].([]any)
	require.Len(t, elems, 1, "list %s", l.raw)
	require.Equal(t, prov["id"], elems[0].(map[string]any)["provider"].(map[string]any)["id"], "list %s", l.raw)

	srv.AddFederatedToken("ext-token", issuer, agentID, srv.Now().Add(time.Hour))
	r := c.gw("POST", "/api/v1/federation/tokens/introspect", `{"token": "ext-token", "issuer_hint": "https://idp.example.com"}`).must(t, 200)
	require.Equal(t, true, r.json["active"], "introspect %s", r.raw)
	require.Equal(t, agentID, r.str("agent_id"), "introspect %s", r.raw)
	require.Equal(t, issuer, r.str("issuer"), "introspect %s", r.raw)
	r = c.gw("POST", "/api/v1/federation/tokens/verify", `{"token": "ext-token"}`).must(t, 200)
	require.Equal(t, true, r.json["valid"], "verify %s", r.raw)
	require.Nil(t, r.json["active"], "verify %s", r.raw)
	r = c.gw("POST", "/api/v1/federation/tokens/introspect", `{"token": "nope"}`).must(t, 200)
	require.Equal(t, false, r.json["active"], "unknown %s", r.raw)
	require.Equal(t, "unknown token", r.str("error"), "unknown %s", r.raw)
	r = c.gw("POST", "/api/v1/federation/tokens/introspect", `{"token": "ext-token", "issuer_hint": "https://other"}`)
	require.Equal(t, false, r.json["active"], "hint mismatch %s", r.raw)
	c.gw("POST", "/api/v1/federation/tokens/introspect", `{"token": "ext-token", "issuer_hint": ""}`).must(t, 400)

	se := c.gw("POST", "/api/v1/federation/sessions/init", `{"token": "ext-token"}`).must(t, 200)
	require.Equal(t, "federation", se.str("source"), "session %s", se.raw)
	require.Equal(t, "read_only", se.str("mode"), "session %s", se.raw)
	require.Equal(t, prov["id"], se.str("provider_id"), "session %s", se.raw)
	require.Equal(t, "high", se.str("trust_level"), "session %s", se.raw)
	require.Equal(t, issuer, se.str("issuer"), "session %s", se.raw)
	got := strs(se.json["scope_ceiling"])
	require.Len(t, got, 1, "scope ceiling %v", got)
	require.Equal(t, "federation:invoke", got[0], "scope ceiling %v", got)
	c.gw("POST", "/api/v1/federation/sessions/init", `{"token": "nope"}`).must(t, 401)

	// Issued ID tokens are known to introspection; expiry follows the clock.
	idt := c.gw("POST", "/api/v1/federation/tokens/issue", fmt.Sprintf(`{"agent_id": %q, "audience": "svc", "scopes": ["read"], "ttl": 60}`, agentID)).must(t, 200)
	require.Equal(t, float64(60), idt.json["expires_in"], "issue %s", idt.raw)
	require.NotEqual(t, "", idt.str("expires_at"), "issue %s", idt.raw)
	body := jsonBody(t, map[string]string{"token": idt.str("id_token")})
	r = c.gw("POST", "/api/v1/federation/tokens/introspect", body)
	require.Equal(t, true, r.json["active"], "issued token %s", r.raw)
	require.Equal(t, srv.URL(), r.str("issuer"), "issued token %s", r.raw)
	srv.Advance(61 * time.Second)
	r = c.gw("POST", "/api/v1/federation/tokens/introspect", body)
	require.Equal(t, false, r.json["active"], "expired issued token %s", r.raw)
	require.Equal(t, "token expired", r.str("error"), "expired issued token %s", r.raw)
	c.gw("POST", "/api/v1/federation/tokens/issue", fmt.Sprintf(`{"agent_id": %q, "ttl": 0}`, agentID)).must(t, 400)
	// A provider for the issuer is required for a session.
	c.gw("DELETE", "/api/v1/federation/providers/"+prov["id"].(string), "").must(t, 204)
	c.gw("POST", "/api/v1/federation/sessions/init", `{"token": "ext-token"}`).must(t, 403)
	c.gw("DELETE", "/api/v1/federation/providers/"+prov["id"].(string), "").must(t, 404)
}

func TestTelemetry(t *testing.T) {
	srv := NewTestServer(t)
	c := newClient(t, srv)
	batch := `{"agent_id": "a1", "session_id": "s1", "events": [` +
		`{"event_type": "tool_start", "tool_name": "t", "timestamp": "2026-03-01T10:00:00.123456+00:00"},` +
		`{"event_type": "tool_end", "tool_name": "t", "duration_ms": 3, "success": false, "timestamp": "2026-03-01T10:00:00.223456+00:00"}]}`
	r := c.do("POST", srv.AuditURL()+"/api/v1/telemetry/report", batch).must(t, 200)
	require.Equal(t, true, r.json["accepted"], "report %s", r.raw)
	require.Equal(t, float64(2), r.json["events_processed"], "report %s", r.raw)
	c.do("POST", srv.AuditURL()+"/api/v1/telemetry/report", `{"agent_id": "a1", "session_id": "s1", "events": []}`).must(t, 200)
	b := srv.TelemetryBatches()
	require.Len(t, b, 2, "batches %v", b)
	require.Equal(t, "a1", b[0].AgentID, "batches %v", b)
	ev := srv.TelemetryEvents()
	require.Len(t, ev, 2, "events %v", ev)
	require.NotNil(t, ev[1].Success, "events %v", ev)
	require.False(t, *ev[1].Success, "events %v", ev)
	require.NotNil(t, ev[1].DurationMs, "events %v", ev)
	require.EqualValues(t, 3, *ev[1].DurationMs, "events %v", ev)
	// The records are typed and complete: absent keys are nil pointers, and
	// the whole event reads as sent.
	three, no := int64(3), false
	want := []TelemetryEventRecord{
		{EventType: "tool_start", ToolName: "t", Timestamp: "2026-03-01T10:00:00.123456+00:00"},
		{EventType: "tool_end", ToolName: "t", DurationMs: &three, Success: &no, Timestamp: "2026-03-01T10:00:00.223456+00:00"},
	}
	require.Equal(t, want, ev, "events %+v, want %+v", ev, want)
	b = srv.TelemetryBatches()
	require.Equal(t, TelemetryBatchRecord{AgentID: "a1", SessionID: "s1", Events: want}, b[0], "batches %+v", b)
	require.NotNil(t, b[1].Events, "batches %+v", b)
	require.Len(t, b[1].Events, 0, "batches %+v", b)
	// They are copies: changing one changes nothing in the server.
	*ev[1].Success, *ev[1].DurationMs, ev[0].ToolName = true, 9, "x"
	*b[0].Events[1].Success, b[0].Events[0].ToolName, b[0].AgentID = true, "y", "z"
	again := srv.TelemetryEvents()
	require.Equal(t, want, again, "records alias the server's state: %+v", again)
	batches := srv.TelemetryBatches()
	require.Equal(t, "a1", batches[0].AgentID, "batch records alias the server's state: %+v", batches)
}

func TestCheckRecords(t *testing.T) {
	srv := NewTestServer(t)
	c := newClient(t, srv)
	agentID := srv.CreateAgent("bot")
	c.auth("POST", "/api/v1/agenttrust/check", checkBody(agentID, "s1", "rm")).must(t, 200)
	c.auth("POST", "/api/v1/agenttrust/check", fmt.Sprintf(`{"agent_id": %q, "session_id": "", "action_name": "ls", `+
		`"action_source": "api", "action_input_summary": "[3 chars]", "action_effect": "read"}`, agentID)).must(t, 200)
	got := srv.Checks()
	want := []CheckRecord{
		{AgentID: agentID, SessionID: "s1", ActionName: "rm", ActionSource: "api"},
		{AgentID: agentID, ActionName: "ls", ActionSource: "api", ActionInputSummary: "[3 chars]", ActionEffect: "read"},
	}
	require.Equal(t, want, got, "checks %+v, want %+v", got, want)
	got[0].ActionName = "changed"
	require.Equal(t, "rm", srv.Checks()[0].ActionName, "check records alias the server's state")
}
