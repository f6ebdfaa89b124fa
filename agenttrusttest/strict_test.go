package agenttrusttest

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestStrictBodies(t *testing.T) {
	srv := NewTestServer(t)
	agentID := srv.CreateAgent("bot", "read")
	c := newClient(t, srv)

	const agents = "/api/v1/agents"
	validAgent := `{"name": "x", "framework": "custom", "capabilities": [], "metadata": {}}`
	cases := []struct {
		name, path, body string
		status           int
		msg              string
	}{
		{"missing key", agents, `{"framework": "custom", "capabilities": [], "metadata": {}}`, 400, `missing required key "name"`},
		{"unknown key", agents, `{"name": "x", "framework": "custom", "capabilities": [], "metadata": {}, "foo": 1}`, 400, `unknown key "foo"`},
		{"wrong type string", agents, `{"name": 5, "framework": "custom", "capabilities": [], "metadata": {}}`, 400, `key "name" must be a string`},
		{"wrong type array", agents, `{"name": "x", "framework": "custom", "capabilities": "read", "metadata": {}}`, 400, `key "capabilities" must be an array of strings`},
		{"wrong element type", agents, `{"name": "x", "framework": "custom", "capabilities": ["a", 2], "metadata": {}}`, 400, `key "capabilities[1]" must be a string`},
		{"wrong type object", agents, `{"name": "x", "framework": "custom", "capabilities": [], "metadata": []}`, 400, `key "metadata" must be an object`},
		{"null for always key", agents, `{"name": "x", "framework": "custom", "capabilities": null, "metadata": {}}`, 400, `key "capabilities" must be an array of strings`},
		{"empty truthy key", agents, `{"name": "x", "framework": "custom", "capabilities": [], "metadata": {}, "org_id": ""}`, 400, `key "org_id" must be omitted when empty`},
		{"empty name", agents, `{"name": "", "framework": "custom", "capabilities": [], "metadata": {}}`, 400, `key "name" must not be empty`},
		{"invalid JSON", agents, `{"name": `, 400, "invalid JSON body"},
		{"trailing data", agents, validAgent + ` {}`, 400, "invalid JSON body"},
		{"not an object", agents, `["name"]`, 400, "request body must be a JSON object"},
		{"int as float", "/api/v1/agent-tokens/issue", `{"agent_id": "` + agentID + `", "scopes": [], "ttl": 2.5}`, 400, `key "ttl" must be an integer`},
		{"int as string", "/api/v1/agent-tokens/issue", `{"agent_id": "` + agentID + `", "scopes": [], "ttl": "300"}`, 400, `key "ttl" must be an integer`},
		{"nested event key", "/api/v1/telemetry/report", `{"agent_id": "a", "session_id": "", "events": [{"event_type": "tool_start", "tool_name": "t", "timestamp": "2026-03-01T10:00:00.000000+00:00", "durationMs": 3}]}`, 400, `unknown key "events[0].durationMs"`},
		{"nested event type", "/api/v1/telemetry/report", `{"agent_id": "a", "session_id": "", "events": [{"event_type": "tool_end", "tool_name": "t", "timestamp": "2026-03-01T10:00:00.000000+00:00", "success": "yes"}]}`, 400, `key "events[0].success" must be a boolean`},
		{"nested missing", "/api/v1/telemetry/report", `{"agent_id": "a", "session_id": "", "events": [{"event_type": "tool_end", "timestamp": "2026-03-01T10:00:00Z"}]}`, 400, `missing required key "events[0].tool_name"`},
		{"bad timestamp", "/api/v1/telemetry/report", `{"agent_id": "a", "session_id": "", "events": [{"event_type": "tool_end", "tool_name": "t", "timestamp": "yesterday"}]}`, 400, `key "events[0].timestamp" must be an RFC 3339 timestamp`},
		{"nullable accepts null", "/api/v1/agent-tokens/introspect", `{"token": "at_x", "target": null, "required_scopes": []}`, 200, ""},
		{"nullable still typed", "/api/v1/agent-tokens/introspect", `{"token": "at_x", "target": 1, "required_scopes": []}`, 400, `key "target" must be a string`},
		{"empty target", "/api/v1/agent-tokens/introspect", `{"token": "at_x", "target": "", "required_scopes": []}`, 400, `key "target" must be null when no target is given`},
		{"empty body", agents, ``, 400, "request body required"},
		{"action_source literal", "/api/v1/agenttrust/check", `{"agent_id": "a", "session_id": "", "action_name": "t", "action_source": "sdk", "action_input_summary": ""}`, 400, `key "action_source" must be "api"`},
		{"summary too long", "/api/v1/agenttrust/check", jsonBody(t, map[string]string{"agent_id": "a", "session_id": "", "action_name": "t", "action_source": "api", "action_input_summary": strings.Repeat("é", 201)}), 400, `key "action_input_summary" must be at most 200 characters`},
		{"summary 200 runes ok", "/api/v1/agenttrust/check", jsonBody(t, map[string]string{"agent_id": "a", "session_id": "", "action_name": "t", "action_source": "api", "action_input_summary": strings.Repeat("é", 200)}), 200, ""},
		{"valid body", agents, validAgent, 201, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := c.do("POST", srv.URL()+tc.path, tc.body)
			require.Equal(t, tc.status, r.status, "status %d, want %d (body %s)", r.status, tc.status, r.raw)
			if tc.msg != "" {
				require.True(t, strings.HasPrefix(r.errMsg(), tc.msg), "error %q, want prefix %q", r.errMsg(), tc.msg)
			}
		})
	}
}

func TestStrictBodilessAndContentType(t *testing.T) {
	srv := NewTestServer(t)
	id := srv.CreateAgent("bot")
	c := newClient(t, srv)

	// A bodiless POST with Content-Type and no body is accepted.
	c.gw("POST", "/api/v1/agents/"+id+"/card", "").must(t, 200)
	// ... but not with a body, not even {}.
	r := c.gw("POST", "/api/v1/agents/"+id+"/card", "{}").must(t, 400)
	require.Equal(t, "this endpoint takes no request body", r.errMsg(), "error %q", r.errMsg())
	// GET needs no Content-Type and rejects a body.
	c.doHeaders("GET", srv.URL()+"/api/v1/agents/"+id, "", map[string]string{"Content-Type": ""}).must(t, 200)
	c.gw("GET", "/api/v1/agents/"+id, `{"x": 1}`).must(t, 400)
	// A POST with a body needs application/json (parameters allowed).
	body := `{"reason": "r"}`
	c.doHeaders("POST", srv.URL()+"/api/v1/agents/"+id+"/revoke", body, map[string]string{"Content-Type": "text/plain"}).must(t, 415)
	c.doHeaders("POST", srv.URL()+"/api/v1/agents/"+id+"/revoke", body, map[string]string{"Content-Type": "application/json; charset=utf-8"}).must(t, 200)
}

func TestAuthentication(t *testing.T) {
	srv := NewTestServer(t)
	c := newClient(t, srv)

	c.key = ""
	r := c.gw("GET", "/api/v1/agents", "").must(t, 401)
	require.NotEqual(t, "", r.errMsg(), "401 without error body or request id: %s %v", r.raw, r.header)
	require.NotEqual(t, "", r.header.Get("X-Request-ID"), "401 without error body or request id: %s %v", r.raw, r.header)
	c.key = "sk_test_wrong"
	c.gw("GET", "/api/v1/agents", "").must(t, 401)

	// Public endpoints need no key.
	c.key = ""
	r = c.gw("GET", "/health", "").must(t, 200)
	require.Equal(t, "ok", r.str("status"), "health %s", r.raw)

	// Header names match case-insensitively, even when sent lowercase.
	req, _ := http.NewRequest("GET", srv.URL()+"/api/v1/agents", nil)
	req.Header["x-api-key"] = []string{srv.APIKey()}
	res, err := c.hc.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	require.EqualValues(t, 200, res.StatusCode, "lowercase header: status %d", res.StatusCode)

	// An added key works and belongs to its org.
	c.key = srv.AddAPIKey("org-2")
	a := c.gw("POST", "/api/v1/agents", `{"name": "b", "framework": "custom", "capabilities": [], "metadata": {}}`).must(t, 201)
	org := a.json["agent"].(map[string]any)["org_id"]
	require.Equal(t, "org-2", org, "org %v", org)
	require.Equal(t, DefaultOrgID, srv.OrgID(), "org %q key %q", srv.OrgID(), srv.APIKey())
	require.True(t, strings.HasPrefix(srv.APIKey(), "sk_test_"), "org %q key %q", srv.OrgID(), srv.APIKey())
}

func TestRouting(t *testing.T) {
	srv := NewTestServer(t)
	c := newClient(t, srv)
	srv.SeedAgent(AgentSeed{ID: "a/b", Name: "slash"})

	r := c.gw("GET", "/api/v1/nope", "").must(t, 404)
	require.NotEqual(t, "", r.header.Get("X-Request-ID"), "no X-Request-ID on 404")
	r = c.gw("DELETE", "/api/v1/agents", "").must(t, 405)
	got := r.header.Get("Allow")
	require.Equal(t, "GET, POST", got, "Allow %q", got)
	// A percent-escaped slash stays inside one segment.
	r = c.gw("GET", "/api/v1/agents/a%2Fb", "").must(t, 200)
	id := r.json["agent"].(map[string]any)["id"]
	require.Equal(t, "a/b", id, "id %v", id)
	c.gw("GET", "/api/v1/agents/a/b", "").must(t, 404)
	// An empty parameter is not a match.
	c.gw("GET", "/api/v1/agents/", "").must(t, 404)
	// Literal segments beat parameters: POST /mcp/servers registers.
	c.gw("POST", "/mcp/servers", `{"name": "s", "url": "http://127.0.0.1:1/"}`).must(t, 201)
	// Query strings are checked.
	c.gw("GET", "/api/v1/agents?foo=1", "").must(t, 400)
	c.gw("GET", "/api/v1/agents?org_id=", "").must(t, 400)
	c.gw("GET", "/api/v1/agents?org_id=org-default", "").must(t, 200)

	var paths []string
	for _, rr := range srv.Requests() {
		paths = append(paths, rr.Path)
	}
	require.Contains(t, strings.Join(paths, " "), "/api/v1/agents/a%2Fb", "recorded paths %v lack the escaped id", paths)
}

func TestRecordedRequests(t *testing.T) {
	srv := NewTestServer(t)
	c := newClient(t, srv)
	body := `{"name": "<b&c>", "framework": "custom", "capabilities": [], "metadata": {}}`
	c.gw("POST", "/api/v1/agents", body).must(t, 201)
	c.gw("GET", "/api/v1/agents?org_id=org-x", "").must(t, 200)

	reqs := srv.Requests()
	require.Len(t, reqs, 2, "%d requests", len(reqs))
	require.Equal(t, body, string(reqs[0].Body), "first request %+v", reqs[0])
	require.Equal(t, "POST", reqs[0].Method, "first request %+v", reqs[0])
	require.Equal(t, "/api/v1/agents", reqs[0].Path, "first request %+v", reqs[0])
	require.Equal(t, srv.APIKey(), reqs[0].Header.Get("x-api-key"), "first request header %v", reqs[0].Header)
	require.NotEqual(t, "", reqs[0].RequestID, "first request header %v", reqs[0].Header)
	require.Equal(t, "gateway", reqs[0].Listener, "first request header %v", reqs[0].Header)
	require.Equal(t, "org_id=org-x", reqs[1].RawQuery, "second request %+v", reqs[1])
	require.Len(t, reqs[1].Body, 0, "second request %+v", reqs[1])
	// Copies: mutating them changes nothing.
	reqs[0].Body[0] = 'X'
	reqs[0].Header.Set("X-API-Key", "changed")
	again := srv.Requests()
	require.Equal(t, byte('{'), again[0].Body[0], "Requests returned shared memory")
	require.Equal(t, srv.APIKey(), again[0].Header.Get("X-API-Key"), "Requests returned shared memory")
	srv.ClearRequests()
	n := len(srv.Requests())
	require.EqualValues(t, 0, n, "%d requests after clear", n)
}
