package agenttrusttest

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"reflect"
	"testing"
	"time"
)

func TestAgentCards(t *testing.T) {
	srv := NewTestServer(t)
	c := newClient(t, srv)
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(pub)
	pemKey := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	id := srv.SeedAgent(AgentSeed{Name: "carded", Capabilities: []string{"search"}, PublicKey: pemKey})
	plain := srv.CreateAgent("plain")

	c.gw("GET", "/api/v1/agents/"+id+"/card", "").must(t, 404)
	c.gw("GET", "/a2a/agents/"+id+"/agent.json", "").must(t, 404)
	card := c.gw("POST", "/api/v1/agents/"+id+"/card", "").must(t, 200)
	if card.str("name") != "carded" || card.json["signatures"] != nil {
		t.Fatalf("card %s", card.raw)
	}
	iface := card.json["supportedInterfaces"].([]any)[0].(map[string]any)
	if iface["url"] != srv.URL()+"/a2a/agents/"+id || iface["protocolBinding"] != "jsonrpc" || iface["tenant"] != DefaultOrgID {
		t.Fatalf("interface %v", iface)
	}
	ext := card.json["capabilities"].(map[string]any)["extensions"].([]any)[0].(map[string]any)
	params := ext["params"].(map[string]any)
	if ext["uri"] != TrustExtensionURI || params["ati_trust_score"] != 0.9 {
		t.Fatalf("extension %v", ext)
	}
	key := params["ati_agent_key"].(map[string]any)
	if key["kty"] != "OKP" || key["crv"] != "Ed25519" || key["x"] != base64.RawURLEncoding.EncodeToString(pub) {
		t.Fatalf("agent key %v", key)
	}
	if skills := card.json["skills"].([]any); len(skills) != 1 || skills[0].(map[string]any)["id"] != "search" {
		t.Fatalf("skills %v", skills)
	}
	c.gw("GET", "/api/v1/agents/"+id+"/card", "").must(t, 200)

	pubd := c.gw("PUT", "/api/v1/agents/"+id+"/card/publish", "").must(t, 200)
	if sigs, _ := pubd.json["signatures"].([]any); len(sigs) != 1 {
		t.Fatalf("published card %s", pubd.raw)
	}
	c.key = "" // the public card needs no key
	c.gw("GET", "/a2a/agents/"+id+"/agent.json", "").must(t, 200)
	c.key = srv.APIKey()

	// No key on an agent without one; publish generates the card.
	p := c.gw("PUT", "/api/v1/agents/"+plain+"/card/publish", "").must(t, 200)
	pext := p.json["capabilities"].(map[string]any)["extensions"].([]any)[0].(map[string]any)
	if _, has := pext["params"].(map[string]any)["ati_agent_key"]; has {
		t.Fatalf("plain agent card has a key: %v", pext)
	}
	c.gw("POST", "/api/v1/agents/nobody/card", "").must(t, 404)
}

func rpc(method, params string) string {
	return fmt.Sprintf(`{"jsonrpc": "2.0", "id": 1, "method": %q, "params": %s}`, method, params)
}

func rpcErrCode(t *testing.T, r resp) float64 {
	t.Helper()
	e, ok := r.json["error"].(map[string]any)
	if !ok {
		t.Fatalf("no JSON-RPC error in %s", r.raw)
	}
	return e["code"].(float64)
}

func TestA2A(t *testing.T) {
	srv := NewTestServer(t)
	c := newClient(t, srv)
	a, b := srv.CreateAgent("a"), srv.CreateAgent("b")

	sent := c.gw("POST", "/a2a", rpc("tasks/send", fmt.Sprintf(`{"source_agent_id": %q, "target_agent_id": %q, "message": "hi"}`, a, b))).must(t, 200)
	task := sent.json["result"].(map[string]any)
	taskID, _ := task["id"].(string)
	if taskID == "" || task["status"] != "pending" || task["message"] != "hi" || sent.json["id"] != float64(1) {
		t.Fatalf("send %s", sent.raw)
	}
	got := c.gw("POST", "/a2a", rpc("tasks/get", fmt.Sprintf(`{"task_id": %q}`, taskID))).must(t, 200)
	if got.json["result"].(map[string]any)["id"] != taskID {
		t.Fatalf("get %s", got.raw)
	}
	cancelled := c.gw("POST", "/a2a", rpc("tasks/cancel", fmt.Sprintf(`{"task_id": %q}`, taskID))).must(t, 200)
	if cancelled.json["result"].(map[string]any)["status"] != "cancelled" {
		t.Fatalf("cancel %s", cancelled.raw)
	}
	if code := rpcErrCode(t, c.gw("POST", "/a2a", rpc("tasks/cancel", fmt.Sprintf(`{"task_id": %q}`, taskID)))); code != a2aNotCancelable {
		t.Fatalf("cancel twice: code %v", code)
	}
	if code := rpcErrCode(t, c.gw("POST", "/a2a", rpc("tasks/get", `{"task_id": "task-404"}`))); code != a2aTaskNotFound {
		t.Fatalf("unknown task: code %v", code)
	}
	if code := rpcErrCode(t, c.gw("POST", "/a2a", rpc("tasks/get", `{"id": "x"}`))); code != rpcInvalidParams {
		t.Fatalf("A2A-style id param: code %v", code)
	}
	if code := rpcErrCode(t, c.gw("POST", "/a2a", rpc("tasks/resubscribe", `{}`))); code != rpcMethodNotFound {
		t.Fatalf("unknown method: code %v", code)
	}
	if code := rpcErrCode(t, c.gw("POST", "/a2a", rpc("tasks/send", fmt.Sprintf(`{"source_agent_id": %q, "target_agent_id": "ghost", "message": "x"}`, a)))); code != rpcInvalidParams {
		t.Fatalf("unknown target: code %v", code)
	}
	// Envelope errors are HTTP 400.
	if r := c.gw("POST", "/a2a", `{"jsonrpc": "2.0", "id": 1, "method": "tasks/get"}`).must(t, 400); r.errMsg() != `missing required key "params"` {
		t.Fatalf("no params: %s", r.raw)
	}
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
	if res["id"] == "" || res["contextId"] == "" || status["state"] != "completed" || status["timestamp"] == "" {
		t.Fatalf("task %s", r.raw)
	}
	history := res["history"].([]any)
	if len(history) != 2 || history[0].(map[string]any)["messageId"] != "0b0f7c1e-3a9d-4c1b-9a57-2f7d0b3c9e11" {
		t.Fatalf("history %v", history)
	}
	reply := history[1].(map[string]any)["parts"].([]any)[0].(map[string]any)
	if reply["text"] != "echo: hi" || len(res["artifacts"].([]any)) != 1 {
		t.Fatalf("reply %v", reply)
	}
	// Continuing the task appends to it.
	cont := fmt.Sprintf(`{"message": {"role": "user", "parts": [{"kind": "text", "text": "again"}], "messageId": "m2", "taskId": %q}}`, res["id"])
	r2 := c.gw("POST", "/a2a/agents/"+id, rpc("message/send", cont)).must(t, 200)
	if res2 := r2.json["result"].(map[string]any); res2["id"] != res["id"] || len(res2["history"].([]any)) != 4 {
		t.Fatalf("continued %s", r2.raw)
	}
	bad := `{"message": {"role": "user", "parts": [], "messageId": "m", "contextId": "c"}}`
	if code := rpcErrCode(t, c.gw("POST", "/a2a/agents/"+id, rpc("message/send", bad))); code != rpcInvalidParams {
		t.Fatalf("extra key: code %v", code)
	}
	if code := rpcErrCode(t, c.gw("POST", "/a2a/agents/"+id, rpc("message/send", `{"message": {"role": "user", "parts": [], "messageId": "m", "taskId": "task-404"}}`))); code != a2aTaskNotFound {
		t.Fatalf("unknown taskId: code %v", code)
	}
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
	if got := strs(root["delegation_chain"]); len(got) != 1 || got[0] != rootID {
		t.Fatalf("root chain %v", got)
	}
	if r := create(a, b, `["admin"]`, ""); r.status != 403 || r.errMsg() != `scope "admin" exceeds the delegator's capabilities` {
		t.Fatalf("beyond capabilities: %d %s", r.status, r.raw)
	}
	child := create(b, d, `["read"]`, fmt.Sprintf(`, "parent_delegation_id": %q`, rootID)).must(t, 201).json["delegation"].(map[string]any)
	if got := strs(child["delegation_chain"]); len(got) != 2 || got[0] != rootID || got[1] != child["id"] {
		t.Fatalf("child chain %v", got)
	}
	if r := create(b, d, `["delete"]`, fmt.Sprintf(`, "parent_delegation_id": %q`, rootID)); r.status != 403 || r.errMsg() != `scope "delete" exceeds the parent delegation's scope` {
		t.Fatalf("beyond parent: %d %s", r.status, r.raw)
	}
	create(d, b, `["read"]`, fmt.Sprintf(`, "parent_delegation_id": %q`, rootID)).must(t, 403) // not granted to d
	create(b, d, `[]`, `, "parent_delegation_id": "del-404"`).must(t, 404)
	create(a, b, `[]`, `, "parent_delegation_id": null`).must(t, 400)

	se := c.gw("POST", "/api/v1/delegations/"+child["id"].(string)+"/session", "").must(t, 200)
	if se.str("source") != "a2a" || se.str("mode") != "read_only" || se.str("delegation_id") != child["id"] || se.str("agent_id") != d {
		t.Fatalf("session %s", se.raw)
	}
	if l := c.gw("GET", "/api/v1/delegations", "").must(t, 200); len(l.json["delegations"].([]any)) != 2 {
		t.Fatalf("list %s", l.raw)
	}
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
	if r := c.gw("POST", "/api/v1/delegations/"+id+"/session", "").must(t, 403); r.errMsg() != "delegation expired" {
		t.Fatalf("expired: %s", r.raw)
	}
}

func TestFederation(t *testing.T) {
	srv := NewTestServer(t)
	c := newClient(t, srv)
	agentID := srv.CreateAgent("fed", "read")
	const issuer = "https://idp.example.com"

	p := c.gw("POST", "/api/v1/federation/providers", fmt.Sprintf(`{"issuer": %q, "name": "IdP", "trust_level": "high"}`, issuer)).must(t, 201)
	prov := p.json["provider"].(map[string]any)
	if prov["issuer"] != issuer || prov["trust_level"] != "high" || prov["status"] != "active" {
		t.Fatalf("provider %s", p.raw)
	}
	c.gw("POST", "/api/v1/federation/providers", fmt.Sprintf(`{"issuer": %q, "name": "again"}`, issuer)).must(t, 409)
	l := c.gw("GET", "/api/v1/federation/providers", "").must(t, 200)
	if elems := l.json["providers"].([]any); len(elems) != 1 || elems[0].(map[string]any)["provider"].(map[string]any)["id"] != prov["id"] {
		t.Fatalf("list %s", l.raw)
	}

	srv.AddFederatedToken("ext-token", issuer, agentID, srv.Now().Add(time.Hour))
	r := c.gw("POST", "/api/v1/federation/tokens/introspect", `{"token": "ext-token", "issuer_hint": "https://idp.example.com"}`).must(t, 200)
	if r.json["active"] != true || r.str("agent_id") != agentID || r.str("issuer") != issuer {
		t.Fatalf("introspect %s", r.raw)
	}
	if r := c.gw("POST", "/api/v1/federation/tokens/verify", `{"token": "ext-token"}`).must(t, 200); r.json["valid"] != true || r.json["active"] != nil {
		t.Fatalf("verify %s", r.raw)
	}
	if r := c.gw("POST", "/api/v1/federation/tokens/introspect", `{"token": "nope"}`).must(t, 200); r.json["active"] != false || r.str("error") != "unknown token" {
		t.Fatalf("unknown %s", r.raw)
	}
	if r := c.gw("POST", "/api/v1/federation/tokens/introspect", `{"token": "ext-token", "issuer_hint": "https://other"}`); r.json["active"] != false {
		t.Fatalf("hint mismatch %s", r.raw)
	}
	c.gw("POST", "/api/v1/federation/tokens/introspect", `{"token": "ext-token", "issuer_hint": ""}`).must(t, 400)

	se := c.gw("POST", "/api/v1/federation/sessions/init", `{"token": "ext-token"}`).must(t, 200)
	if se.str("source") != "federation" || se.str("mode") != "read_only" || se.str("provider_id") != prov["id"] || se.str("trust_level") != "high" || se.str("issuer") != issuer {
		t.Fatalf("session %s", se.raw)
	}
	if got := strs(se.json["scope_ceiling"]); len(got) != 1 || got[0] != "federation:invoke" {
		t.Fatalf("scope ceiling %v", got)
	}
	c.gw("POST", "/api/v1/federation/sessions/init", `{"token": "nope"}`).must(t, 401)

	// Issued ID tokens are known to introspection; expiry follows the clock.
	idt := c.gw("POST", "/api/v1/federation/tokens/issue", fmt.Sprintf(`{"agent_id": %q, "audience": "svc", "scopes": ["read"], "ttl": 60}`, agentID)).must(t, 200)
	if idt.json["expires_in"] != float64(60) || idt.str("expires_at") == "" {
		t.Fatalf("issue %s", idt.raw)
	}
	body := jsonBody(t, map[string]string{"token": idt.str("id_token")})
	if r := c.gw("POST", "/api/v1/federation/tokens/introspect", body); r.json["active"] != true || r.str("issuer") != srv.URL() {
		t.Fatalf("issued token %s", r.raw)
	}
	srv.Advance(61 * time.Second)
	if r := c.gw("POST", "/api/v1/federation/tokens/introspect", body); r.json["active"] != false || r.str("error") != "token expired" {
		t.Fatalf("expired issued token %s", r.raw)
	}
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
	if r.json["accepted"] != true || r.json["events_processed"] != float64(2) {
		t.Fatalf("report %s", r.raw)
	}
	c.do("POST", srv.AuditURL()+"/api/v1/telemetry/report", `{"agent_id": "a1", "session_id": "s1", "events": []}`).must(t, 200)
	if b := srv.TelemetryBatches(); len(b) != 2 || b[0].AgentID != "a1" {
		t.Fatalf("batches %v", b)
	}
	ev := srv.TelemetryEvents()
	if len(ev) != 2 || (ev[1].Success == nil || *ev[1].Success) || ev[1].DurationMs == nil || *ev[1].DurationMs != 3 {
		t.Fatalf("events %v", ev)
	}
	// The records are typed and complete: absent keys are nil pointers, and
	// the whole event reads as sent.
	three, no := int64(3), false
	want := []TelemetryEventRecord{
		{EventType: "tool_start", ToolName: "t", Timestamp: "2026-03-01T10:00:00.123456+00:00"},
		{EventType: "tool_end", ToolName: "t", DurationMs: &three, Success: &no, Timestamp: "2026-03-01T10:00:00.223456+00:00"},
	}
	if !reflect.DeepEqual(ev, want) {
		t.Fatalf("events %+v, want %+v", ev, want)
	}
	b := srv.TelemetryBatches()
	if !reflect.DeepEqual(b[0], TelemetryBatchRecord{AgentID: "a1", SessionID: "s1", Events: want}) ||
		b[1].Events == nil || len(b[1].Events) != 0 {
		t.Fatalf("batches %+v", b)
	}
	// They are copies: changing one changes nothing in the server.
	*ev[1].Success, *ev[1].DurationMs, ev[0].ToolName = true, 9, "x"
	*b[0].Events[1].Success, b[0].Events[0].ToolName, b[0].AgentID = true, "y", "z"
	if again := srv.TelemetryEvents(); !reflect.DeepEqual(again, want) {
		t.Fatalf("records alias the server's state: %+v", again)
	}
	if again := srv.TelemetryBatches(); again[0].AgentID != "a1" {
		t.Fatalf("batch records alias the server's state: %+v", again)
	}
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
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("checks %+v, want %+v", got, want)
	}
	got[0].ActionName = "changed"
	if srv.Checks()[0].ActionName != "rm" {
		t.Fatal("check records alias the server's state")
	}
}
