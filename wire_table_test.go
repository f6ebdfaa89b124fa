package agenttrust

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestEveryMethodWire runs every core method against the split layout and
// checks base, method, escaped path, headers and the exact body by wire name.
func TestEveryMethodWire(t *testing.T) {
	f := false
	dur := 12
	ts := time.Date(2026, 3, 1, 10, 0, 0, 123456000, time.UTC)
	cases := []struct {
		name, base, method, path, query string
		reply                           string
		body                            string // "" = no body
		call                            func(context.Context, *Client) error
	}{
		{"Agents.Create/defaults", "gateway", "POST", "/gw/api/v1/agents", "", `{"id":"a1"}`,
			`{"name":"bot","framework":"custom","capabilities":[],"metadata":{},"public_key":` + vecPubJSON + `}`,
			func(ctx context.Context, c *Client) error {
				_, err := c.Agents.Create(ctx, AgentCreateParams{Name: "bot", PublicKey: vecPubPEM})
				return err
			}},
		{"Agents.Create/full", "gateway", "POST", "/gw/api/v1/agents", "", `{"agent":{"id":"a1"}}`,
			`{"name":"billing <bot> & co","framework":"langchain","capabilities":["read_invoices"],"metadata":{"k":"<v>"},"public_key":` + vecPubJSON + `,"org_id":"org-1"}`,
			func(ctx context.Context, c *Client) error {
				_, err := c.Agents.Create(ctx, AgentCreateParams{Name: "billing <bot> & co", Framework: FrameworkLangChain,
					OrgID: "org-1", PublicKey: vecPubPEM, Capabilities: []string{"read_invoices"}, Metadata: map[string]any{"k": "<v>"}})
				return err
			}},
		{"Agents.Get", "gateway", "GET", "/gw/api/v1/agents/agent-123", "", `{"id":"agent-123"}`, "",
			func(ctx context.Context, c *Client) error { _, err := c.Agents.Get(ctx, "agent-123"); return err }},
		{"Agents.List/all", "gateway", "GET", "/gw/api/v1/agents", "", `{"agents":[]}`, "",
			func(ctx context.Context, c *Client) error {
				_, err := c.Agents.List(ctx, AgentListParams{})
				return err
			}},
		{"Agents.List/empty org", "gateway", "GET", "/gw/api/v1/agents", "", `[]`, "",
			func(ctx context.Context, c *Client) error {
				_, err := c.Agents.List(ctx, AgentListParams{})
				return err
			}},
		{"Agents.List/org", "gateway", "GET", "/gw/api/v1/agents", "org_id=org+1%26x%3Dy", `[]`, "",
			func(ctx context.Context, c *Client) error {
				_, err := c.Agents.List(ctx, AgentListParams{OrgID: "org 1&x=y"})
				return err
			}},
		{"Agents.Revoke/default", "gateway", "POST", "/gw/api/v1/agents/a1/revoke", "", "", `{"reason":"manual_revocation"}`,
			func(ctx context.Context, c *Client) error { return c.Agents.Revoke(ctx, "a1", "") }},
		{"Agents.Revoke/reason", "gateway", "POST", "/gw/api/v1/agents/a1/revoke", "", "revoked", `{"reason":"compromised"}`,
			func(ctx context.Context, c *Client) error { return c.Agents.Revoke(ctx, "a1", "compromised") }},
		{"Tokens.Issue/defaults", "auth", "POST", "/api/v1/agent-tokens/issue", "", `{"token":"at_x"}`,
			`{"agent_id":"a1","scopes":[],"ttl":300}`,
			func(ctx context.Context, c *Client) error {
				_, err := c.Tokens.Issue(ctx, TokenIssueParams{AgentID: "a1", Target: "svc"})
				return err
			}},
		{"Tokens.Issue/full", "auth", "POST", "/api/v1/agent-tokens/issue", "", `{"token":"at_x"}`,
			`{"agent_id":"a1","scopes":["w","r"],"ttl":60,"session_id":"s1"}`,
			func(ctx context.Context, c *Client) error {
				_, err := c.Tokens.Issue(ctx, TokenIssueParams{AgentID: "a1", Scopes: []string{"w", "r"}, Target: "svc",
					TTLSeconds: 60, SessionID: "s1", NoCache: true})
				return err
			}},
		{"Tokens.Introspect/no target", "auth", "POST", "/api/v1/agent-tokens/introspect", "", `{"active":true}`,
			`{"token":"at_secret","target":null,"required_scopes":[]}`,
			func(ctx context.Context, c *Client) error {
				_, err := c.Tokens.Introspect(ctx, TokenIntrospectParams{Token: "at_secret"})
				return err
			}},
		{"Tokens.Introspect/full", "auth", "POST", "/api/v1/agent-tokens/introspect", "", `{"active":false}`,
			`{"token":"at_secret","target":"svc","required_scopes":["read"]}`,
			func(ctx context.Context, c *Client) error {
				_, err := c.Tokens.Introspect(ctx, TokenIntrospectParams{Token: "at_secret", Target: "svc", RequiredScopes: []string{"read"}})
				return err
			}},
		{"Tokens.Verify", "auth", "POST", "/api/v1/agent-tokens/introspect", "", `{"active":true}`,
			`{"token":"at_secret","target":null,"required_scopes":[]}`,
			func(ctx context.Context, c *Client) error {
				_, err := c.Tokens.Verify(ctx, TokenIntrospectParams{Token: "at_secret"})
				return err
			}},
		{"Tokens.Revoke", "auth", "POST", "/api/v1/agent-tokens/revoke", "", "", `{"token":"at_secret","reason":"manual_revocation"}`,
			func(ctx context.Context, c *Client) error { return c.Tokens.Revoke(ctx, "at_secret", "") }},
		{"Actions.Check/defaults", "auth", "POST", "/api/v1/agenttrust/check", "", `{"allowed":true}`,
			`{"agent_id":"agent-123","session_id":"","action_name":"tool_call","action_source":"api","action_input_summary":""}`,
			func(ctx context.Context, c *Client) error {
				_, err := c.Actions.Check(ctx, ActionCheckParams{AgentID: "agent-123"})
				return err
			}},
		{"Actions.Check/full", "auth", "POST", "/api/v1/agenttrust/check", "", `{"allowed":false}`,
			`{"agent_id":"a1","session_id":"s1","action_name":"read_file","action_source":"api","action_input_summary":"path=<a&b>","action_effect":"read"}`,
			func(ctx context.Context, c *Client) error {
				_, err := c.Actions.Check(ctx, ActionCheckParams{AgentID: "a1", Action: "ignored", ToolName: "read_file",
					ToolInputSummary: "path=<a&b>", SessionID: "s1", ActionEffect: EffectRead})
				return err
			}},
		{"Actions.Check/action", "auth", "POST", "/api/v1/agenttrust/check", "", `{"allowed":false}`,
			`{"agent_id":"a1","session_id":"","action_name":"deploy","action_source":"api","action_input_summary":""}`,
			func(ctx context.Context, c *Client) error {
				_, err := c.Actions.Check(ctx, ActionCheckParams{AgentID: "a1", Action: "deploy"})
				return err
			}},
		{"Telemetry.Report/empty", "audit", "POST", "/aud/api/v1/telemetry/report", "", `{"accepted":true}`,
			`{"agent_id":"a1","session_id":"","events":[]}`,
			func(ctx context.Context, c *Client) error {
				_, err := c.Telemetry.Report(ctx, TelemetryReportParams{AgentID: "a1"})
				return err
			}},
		{"Telemetry.Report/events", "audit", "POST", "/aud/api/v1/telemetry/report", "", `{"accepted":true}`,
			`{"agent_id":"a1","session_id":"s1","events":[` +
				`{"event_type":"tool_start","tool_name":"<t&>","timestamp":"2026-03-01T10:00:00.123456+00:00"},` +
				`{"event_type":"tool_error","tool_name":"t","duration_ms":12,"success":false,"timestamp":"2026-03-01T10:00:00.123456+00:00","error_type":"TimeoutError"}]}`,
			func(ctx context.Context, c *Client) error {
				_, err := c.Telemetry.Report(ctx, TelemetryReportParams{AgentID: "a1", SessionID: "s1", Events: []TelemetryEvent{
					{EventType: EventToolStart, ToolName: "<t&>", Timestamp: ts},
					{EventType: EventToolError, ToolName: "t", DurationMs: &dur, Success: &f, Timestamp: ts, ErrorType: "TimeoutError"},
				}})
				return err
			}},
		{"Sessions.InitSession", "gateway", "POST", "/gw/mcp/sessions/init", "", `{"session_id":"s1"}`,
			`{"agent_id":"a1","server_id":"srv"}`,
			func(ctx context.Context, c *Client) error {
				_, err := c.Sessions.InitSession(ctx, "a1", "srv")
				return err
			}},
		{"Sessions.GetSession", "gateway", "GET", "/gw/mcp/sessions/s%201", "", `{"session_id":"s 1"}`, "",
			func(ctx context.Context, c *Client) error { _, err := c.Sessions.GetSession(ctx, "s 1"); return err }},
		{"Sessions.InitAPISession", "gateway", "POST", "/gw/api/v1/agenttrust/api-sessions/init", "", `{"source":"api"}`,
			`{"token":"eyJhbGciOi.x.y"}`,
			func(ctx context.Context, c *Client) error {
				_, err := c.Sessions.InitAPISession(ctx, "eyJhbGciOi.x.y")
				return err
			}},
		{"Approvals.Approve/default", "gateway", "POST", "/gw/mcp/approvals/ap-1/approve", "", `{"status":"approved"}`,
			`{"decided_by":"sdk_user"}`,
			func(ctx context.Context, c *Client) error { _, err := c.Approvals.Approve(ctx, "ap-1", ""); return err }},
		{"Approvals.Approve/named", "gateway", "POST", "/gw/mcp/approvals/ap-1/approve", "", `{"status":"approved"}`,
			`{"decided_by":"alice"}`,
			func(ctx context.Context, c *Client) error {
				_, err := c.Approvals.Approve(ctx, "ap-1", "alice")
				return err
			}},
		{"Approvals.Deny", "gateway", "POST", "/gw/mcp/approvals/ap-1/deny", "", `{"status":"denied"}`,
			`{"decided_by":"sdk_user"}`,
			func(ctx context.Context, c *Client) error { _, err := c.Approvals.Deny(ctx, "ap-1", ""); return err }},
		{"Approvals.Get", "gateway", "GET", "/gw/mcp/approvals/ap-1", "", `{"id":"ap-1"}`, "",
			func(ctx context.Context, c *Client) error { _, err := c.Approvals.Get(ctx, "ap-1"); return err }},
		{"Client.Health", "gateway", "GET", "/gw/health", "", `{"status":"ok"}`, "",
			func(ctx context.Context, c *Client) error { _, err := c.Health(ctx); return err }},
	}
	s := newSplit(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s.clear()
			s.c.Tokens.ClearCache()
			h := reply(http.StatusOK, tc.reply)
			s.gw.setHandler(h)
			s.auth.setHandler(h)
			s.audit.setHandler(h)
			require.NoError(t, tc.call(ctxT(t), s.c), "call")
			base, reqs := s.which(t)
			assert.Equal(t, tc.base, base, "sent to %s, want %s", base, tc.base)
			require.Len(t, reqs, 1, "%d requests, want 1", len(reqs))
			r := reqs[0]
			assert.Equal(t, tc.method, r.Method, "got %s %s?%s, want %s %s?%s", r.Method, r.EscapedPath, r.RawQuery, tc.method, tc.path, tc.query)
			assert.Equal(t, tc.path, r.EscapedPath, "got %s %s?%s, want %s %s?%s", r.Method, r.EscapedPath, r.RawQuery, tc.method, tc.path, tc.query)
			assert.Equal(t, tc.query, r.RawQuery, "got %s %s?%s, want %s %s?%s", r.Method, r.EscapedPath, r.RawQuery, tc.method, tc.path, tc.query)
			checkHeaders(t, r, testKey)
			if tc.body == "" {
				assert.Empty(t, r.Body, "unexpected body %s", r.Body)
				return
			}
			assert.JSONEq(t, tc.body, string(r.Body))
			// Keys go out in the documented order (recommended, not required).
			got, want := keyOrder(t, r.Body), keyOrder(t, []byte(tc.body))
			assert.Equal(t, want, got, "key order %v, want %v", got, want)
			assert.False(t, bytesContainAny(r.Body, `\u003c`, `\u003e`, `\u0026`), "body is HTML-escaped: %s", r.Body)
			assert.NotEqualValues(t, '\n', r.Body[len(r.Body)-1], "body ends with a newline")
		})
	}
}

func bytesContainAny(b []byte, subs ...string) bool {
	for _, s := range subs {
		if strings.Contains(string(b), s) {
			return true
		}
	}
	return false
}
