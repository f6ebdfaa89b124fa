package agenttrusttest

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSplitListeners(t *testing.T) {
	srv := NewTestServer(t, WithSplitListeners())
	c := newClient(t, srv)
	urls := map[string]bool{srv.URL(): true, srv.AuthURL(): true, srv.AuditURL(): true}
	require.Len(t, urls, 3, "URLs not distinct: %s %s %s", srv.URL(), srv.AuthURL(), srv.AuditURL())
	agentID := srv.CreateAgent("bot")
	check := checkBody(agentID, "", "t")
	report := `{"agent_id": "a", "session_id": "s", "events": []}`

	c.do("POST", srv.AuthURL()+"/api/v1/agenttrust/check", check).must(t, 200)
	c.do("POST", srv.URL()+"/api/v1/agenttrust/check", check).must(t, 404)
	c.do("POST", srv.AuditURL()+"/api/v1/agenttrust/check", check).must(t, 404)
	c.do("POST", srv.AuditURL()+"/api/v1/telemetry/report", report).must(t, 200)
	c.do("POST", srv.URL()+"/api/v1/telemetry/report", report).must(t, 404)
	c.do("POST", srv.AuthURL()+"/api/v1/agent-tokens/issue", issueBody(agentID, 60)).must(t, 200)
	c.do("POST", srv.URL()+"/api/v1/agent-tokens/issue", issueBody(agentID, 60)).must(t, 404)
	c.do("GET", srv.AuthURL()+"/api/v1/agents", "").must(t, 404)
	c.do("GET", srv.URL()+"/api/v1/agents", "").must(t, 200)
	for u := range urls {
		c.do("GET", u+"/health", "").must(t, 200)
	}

	var got []string
	for _, r := range srv.Requests() {
		if r.Path == "/api/v1/agenttrust/check" {
			got = append(got, r.Listener)
		}
	}
	require.Equal(t, "auth,gateway,audit", strings.Join(got, ","), "check listeners %v", got)
}

func TestSingleListenerByDefault(t *testing.T) {
	srv := NewTestServer(t)
	require.Equal(t, srv.URL(), srv.AuthURL(), "URLs %s %s %s", srv.URL(), srv.AuthURL(), srv.AuditURL())
	require.Equal(t, srv.URL(), srv.AuditURL(), "URLs %s %s %s", srv.URL(), srv.AuthURL(), srv.AuditURL())
	require.True(t, strings.HasPrefix(srv.URL(), "http://127.0.0.1:"), "URLs %s %s %s", srv.URL(), srv.AuthURL(), srv.AuditURL())
}
