package agenttrusttest

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// A body that breaks a rule beyond its key types is answered 400 with the
// rule's message before any state is looked at: the named agent, approval
// or destination does not exist, yet the answer is the 400, not a 404.
// A body that breaks a strict key rule is refused before the extra rules.
func TestBodyRulesBeforeState(t *testing.T) {
	srv := NewTestServer(t, WithSecuritySettings(SecuritySettings{RequireSenderConstrainedTokens: true}))
	agentID := srv.CreateAgent("bot", "read")
	c := newClient(t, srv)
	const pem = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"
	cases := []struct {
		name, method, path, body string
		msg                      string
	}{
		{"token ttl zero", "POST", "/api/v1/agent-tokens/issue", `{"agent_id": "nobody", "scopes": [], "ttl": 0}`, `key "ttl" must be a positive number of seconds`},
		{"token ttl negative", "POST", "/api/v1/agent-tokens/issue", `{"agent_id": "` + agentID + `", "scopes": [], "ttl": -1}`, `key "ttl" must be a positive number of seconds`},
		{"token ttl type first", "POST", "/api/v1/agent-tokens/issue", `{"agent_id": "nobody", "scopes": [], "ttl": "0"}`, `key "ttl" must be an integer`},
		{"delegation ttl", "POST", "/api/v1/delegations", `{"from_agent_id": "x", "to_agent_id": "y", "scope": [], "ttl_seconds": 0}`, `key "ttl_seconds" must be a positive number of seconds`},
		{"id token ttl negative", "POST", "/api/v1/federation/tokens/issue", `{"agent_id": "nobody", "ttl": -5}`, `key "ttl" must be a positive number of seconds`},
		{"id token ttl zero is sent empty", "POST", "/api/v1/federation/tokens/issue", `{"agent_id": "nobody", "ttl": 0}`, `key "ttl" must be omitted when empty`},
		{"wimse ttl negative", "POST", "/api/v1/wimse/token", `{"agent_id": "nobody", "ttl_seconds": -1}`, `key "ttl_seconds" must not be negative`},
		{"check source before credentials", "POST", "/api/v1/agenttrust/check", `{"agent_id": "nobody", "session_id": "", "action_name": "t", "action_source": "sdk", "action_input_summary": ""}`, `key "action_source" must be "api"`},
		{"mcp server url", "POST", "/mcp/servers", `{"name": "s", "url": "ftp://host/"}`, `key "url" must be an absolute http(s) URL`},
		{"siem create batch", "POST", "/api/v1/siem/destinations", `{"name": "n", "destination_type": "webhook", "endpoint_url": "http://127.0.0.1:1/", "batch_size": -1}`, `key "batch_size" must not be negative`},
		{"siem update before 404", "PUT", "/api/v1/siem/destinations/siem-404", `{"flush_interval_seconds": -1}`, `key "flush_interval_seconds" must not be negative`},
		{"siem update url before 404", "PUT", "/api/v1/siem/destinations/siem-404", `{"endpoint_url": "nope"}`, `key "endpoint_url" must be an absolute http(s) URL`},
		{"approve body before 404", "POST", "/mcp/approvals/apr-404/approve", `{"decided_by": ""}`, `key "decided_by" must not be empty`},
		{"revoke body before 404", "POST", "/api/v1/agents/nobody/revoke", `{}`, `missing required key "reason"`},
		{"agent key", "POST", "/api/v1/agents", jsonBody(t, map[string]any{"name": "k", "framework": "custom", "capabilities": []string{}, "metadata": map[string]any{}, "public_key": pem}), `key "public_key" must be an Ed25519 public key in PKIX PEM: `},
		{"a2a version", "POST", "/a2a", `{"jsonrpc": "1.0", "id": 1, "method": "tasks/get", "params": {}}`, `key "jsonrpc" must be "2.0"`},
		{"a2a agent version before 404", "POST", "/a2a/agents/nobody", `{"jsonrpc": "1.0", "id": 1, "method": "message/send", "params": {}}`, `key "jsonrpc" must be "2.0"`},
		{"mcp version before 404", "POST", "/mcp/mcp-404", `{"jsonrpc": "1.0", "id": 1, "method": "tools/list"}`, `key "jsonrpc" must be "2.0"`},
		{"a2a params", "POST", "/a2a", rpc("tasks/get", `{"task_id": 7}`), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := c.gw(tc.method, tc.path, tc.body)
			if tc.msg == "" { // JSON-RPC: a 200 carrying invalid params
				r.must(t, 200)
				require.EqualValues(t, rpcInvalidParams, rpcErrCode(t, r))
				require.Equal(t, `key "params.task_id" must be a string`, r.json["error"].(map[string]any)["message"], "reply %s", r.raw)
				return
			}
			r.must(t, 400)
			require.True(t, strings.HasPrefix(r.errMsg(), tc.msg), "error %q, want prefix %q", r.errMsg(), tc.msg)
		})
	}
	require.Empty(t, srv.Checks(), "a refused check was recorded")
	require.Empty(t, srv.IdentityRejections(), "a 400 body was judged for credentials")
}

// Every lookup by path answers 404 with the entity's own message.
func TestNotFoundMessages(t *testing.T) {
	srv := NewTestServer(t)
	c := newClient(t, srv)
	cases := []struct{ method, path, body, msg string }{
		{"GET", "/api/v1/agents/nobody", "", "agent not found"},
		{"POST", "/api/v1/agents/nobody/revoke", `{"reason": "r"}`, "agent not found"},
		{"GET", "/mcp/sessions/sess-404", "", "session not found"},
		{"GET", "/mcp/approvals/apr-404", "", "approval not found"},
		{"POST", "/mcp/approvals/apr-404/deny", `{"decided_by": "bob"}`, "approval not found"},
		{"DELETE", "/mcp/servers/mcp-404", "", "mcp server not found"},
		{"DELETE", "/api/v1/delegations/del-404", "", "delegation not found"},
		{"DELETE", "/api/v1/federation/providers/fp-404", "", "provider not found"},
		{"GET", "/api/v1/siem/destinations/siem-404", "", "destination not found"},
		{"PUT", "/api/v1/siem/destinations/siem-404", `{"name": "n"}`, "destination not found"},
		{"PUT", "/api/v1/siem/destinations/siem-404", "", "destination not found"},
		{"DELETE", "/api/v1/siem/destinations/siem-404", "", "destination not found"},
		{"GET", "/api/v1/siem/destinations/siem-404/logs", "", "destination not found"},
		{"POST", "/api/v1/siem/destinations/siem-404/test", "", "destination not found"},
	}
	for _, tc := range cases {
		r := c.gw(tc.method, tc.path, tc.body).must(t, 404)
		require.Equal(t, tc.msg, r.errMsg(), "%s %s", tc.method, tc.path)
	}
}

// Created entities get the next id of their kind, are listed in creation
// order and, once deleted, answer 404.
func TestCreateListDelete(t *testing.T) {
	srv := NewTestServer(t)
	c := newClient(t, srv)
	for i := 1; i <= 2; i++ {
		m := c.gw("POST", "/mcp/servers", fmt.Sprintf(`{"name": "m%d", "url": "http://127.0.0.1:1/"}`, i)).must(t, 201)
		require.Equal(t, fmt.Sprintf("mcp-%d", i), m.str("id"), "created %s", m.raw)
		require.Equal(t, srv.OrgID(), m.str("org_id"), "created %s", m.raw)
		d := c.gw("POST", "/api/v1/siem/destinations", fmt.Sprintf(`{"name": "d%d", "destination_type": "webhook", "endpoint_url": "http://127.0.0.1:1/"}`, i)).must(t, 201)
		require.Equal(t, fmt.Sprintf("siem-%d", i), d.str("id"), "created %s", d.raw)
		require.EqualValues(t, 100, d.json["batch_size"], "created %s", d.raw)
	}
	names := func(list any) []string {
		var out []string
		for _, e := range list.([]any) {
			out = append(out, e.(map[string]any)["name"].(string))
		}
		return out
	}
	require.Equal(t, []string{"m1", "m2"}, names(c.gw("GET", "/mcp/servers", "").must(t, 200).json["servers"]))
	require.Equal(t, []string{"d1", "d2"}, names(c.gw("GET", "/api/v1/siem/destinations", "").must(t, 200).json["destinations"]))

	c.gw("DELETE", "/mcp/servers/mcp-1", "").must(t, 204)
	c.gw("DELETE", "/api/v1/siem/destinations/siem-2", "").must(t, 204)
	require.Equal(t, []string{"m2"}, names(c.gw("GET", "/mcp/servers", "").must(t, 200).json["servers"]))
	l := c.gw("GET", "/api/v1/siem/destinations", "").must(t, 200)
	require.Equal(t, []string{"d1"}, names(l.json["destinations"]))
	require.EqualValues(t, 1, l.json["total"], "list %s", l.raw)
	c.gw("DELETE", "/mcp/servers/mcp-1", "").must(t, 404)
	c.gw("GET", "/api/v1/siem/destinations/siem-2", "").must(t, 404)

	// Another org sees none of them.
	c.key = srv.AddAPIKey("org-other")
	require.Empty(t, c.gw("GET", "/mcp/servers", "").must(t, 200).json["servers"])
	require.Empty(t, c.gw("GET", "/api/v1/siem/destinations", "").must(t, 200).json["destinations"])
}

// An approval is decided once; the second decision is a 409 naming the
// first, and the reply of the first echoes the path's approval id.
func TestApprovalDecidedOnce(t *testing.T) {
	srv := NewTestServer(t)
	agentID := srv.CreateAgent("bot")
	srv.RequireElevation("deploy")
	c := newClient(t, srv)
	apID := c.auth("POST", "/api/v1/agenttrust/check", checkBody(agentID, "s1", "deploy")).must(t, 200).str("approval_id")
	require.NotEmpty(t, apID)
	r := c.gw("POST", "/mcp/approvals/"+apID+"/deny", `{"decided_by": "bob"}`).must(t, 200)
	require.Equal(t, map[string]any{"status": "denied", "approval_id": apID, "decided_by": "bob"}, r.json)
	r = c.gw("POST", "/mcp/approvals/"+apID+"/approve", `{"decided_by": "alice"}`).must(t, 409)
	require.Equal(t, "approval already denied", r.errMsg())
	ap := c.gw("GET", "/mcp/approvals/"+apID, "").must(t, 200)
	require.Equal(t, "bob", ap.str("decided_by"), "approval %s", ap.raw)
}

// splitJWS decodes the three parts of a compact JWS.
func splitJWS(t *testing.T, jws string) (header map[string]any, payload, sig []byte) {
	t.Helper()
	parts := strings.Split(jws, ".")
	require.Len(t, parts, 3, "not a compact JWS: %q", jws)
	enc := base64.RawURLEncoding.Strict()
	h, err := enc.DecodeString(parts[0])
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(h, &header))
	payload, err = enc.DecodeString(parts[1])
	require.NoError(t, err)
	sig, err = enc.DecodeString(parts[2])
	require.NoError(t, err)
	return header, payload, sig
}

// ID tokens and published agent cards are signed by the fake's key, and
// the signatures verify.
func TestIDTokenAndCardSignaturesVerify(t *testing.T) {
	srv := NewTestServer(t)
	agentID := srv.CreateAgent("bot", "read")
	c := newClient(t, srv)
	key := srv.WIMSESigningKey()

	idt := c.gw("POST", "/api/v1/federation/tokens/issue", fmt.Sprintf(`{"agent_id": %q, "audience": "svc", "scopes": ["read"], "ttl": 60}`, agentID)).must(t, 200).str("id_token")
	hdr, payload, sig := splitJWS(t, idt)
	require.Equal(t, map[string]any{"alg": "EdDSA", "typ": "JWT", "kid": cardKeyID}, hdr)
	signed := idt[:strings.LastIndexByte(idt, '.')]
	require.True(t, ed25519.Verify(key, []byte(signed), sig), "ID token signature does not verify")
	var claims map[string]any
	require.NoError(t, json.Unmarshal(payload, &claims))
	require.Equal(t, srv.URL(), claims["iss"], "claims %v", claims)
	require.Equal(t, agentID, claims["sub"], "claims %v", claims)
	require.Equal(t, "svc", claims["aud"], "claims %v", claims)
	require.Equal(t, "read", claims["scope"], "claims %v", claims)
	require.EqualValues(t, 60, claims["exp"].(float64)-claims["iat"].(float64), "claims %v", claims)
	tampered := signed[:len(signed)-2] + "xx" + idt[len(signed):]
	_, _, tsig := splitJWS(t, tampered)
	require.False(t, ed25519.Verify(key, []byte(tampered[:strings.LastIndexByte(tampered, '.')]), tsig), "a tampered token verifies")

	card := c.gw("PUT", "/api/v1/agents/"+agentID+"/card/publish", "").must(t, 200)
	sigs := card.json["signatures"].([]any)
	require.Len(t, sigs, 1, "card %s", card.raw)
	entry := sigs[0].(map[string]any)
	protected := entry["protected"].(string)
	h, err := base64.RawURLEncoding.Strict().DecodeString(protected)
	require.NoError(t, err)
	require.JSONEq(t, `{"alg":"EdDSA","kid":"`+cardKeyID+`"}`, string(h))
	cardSig, err := base64.RawURLEncoding.Strict().DecodeString(entry["signature"].(string))
	require.NoError(t, err)
	unsigned := card.json
	delete(unsigned, "signatures")
	body, err := json.Marshal(unsigned) // the signed payload: the card without signatures, keys sorted
	require.NoError(t, err)
	input := protected + "." + base64.RawURLEncoding.EncodeToString(body)
	require.True(t, ed25519.Verify(key, []byte(input), cardSig), "card signature does not verify over %s", body)
	unsigned["name"] = "mallory"
	forged, err := json.Marshal(unsigned)
	require.NoError(t, err)
	require.False(t, ed25519.Verify(key, []byte(protected+"."+base64.RawURLEncoding.EncodeToString(forged)), cardSig), "a changed card verifies")
}
