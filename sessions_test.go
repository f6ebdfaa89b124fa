package agenttrust

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSessionDecoding(t *testing.T) {
	srv := newRecServer(t, nil)
	c := newTestClient(t, srv.URL)
	body := `{"session_id":"s1","agent_id":"a1","org_id":"o1","source":"mcp","server_id":"srv","delegation_id":"d","provider_id":"p",
		"issuer":"iss","trust_level":"high","mode":"read_only","allowed_actions":["read"],"scope_ceiling":["x"],"total_calls":5,
		"read_calls":3,"write_calls":1,"denied_calls":1,"created_at":"2026-03-01T10:00:00Z","last_activity_at":"2026-03-01 10:00:00.5"}`
	want := Session{SessionID: "s1", AgentID: "a1", OrgID: "o1", Source: "mcp", ServerID: "srv", DelegationID: "d", ProviderID: "p",
		Issuer: "iss", TrustLevel: "high", Mode: "read_only", AllowedActions: []string{"read"}, ScopeCeiling: []string{"x"},
		TotalCalls: 5, ReadCalls: 3, WriteCalls: 1, DeniedCalls: 1}
	calls := map[string]func() (*Session, error){
		"InitSession":    func() (*Session, error) { return c.Sessions.InitSession(ctxT(t), "a1", "srv") },
		"GetSession":     func() (*Session, error) { return c.Sessions.GetSession(ctxT(t), "s1") },
		"InitAPISession": func() (*Session, error) { return c.Sessions.InitAPISession(ctxT(t), "eyJ") },
	}
	for name, call := range calls {
		srv.setHandler(reply(200, body))
		s, err := call()
		require.NoError(t, err)
		assert.True(t, s.CreatedAt.Equal(ts0), "%s: times %v %v", name, s.CreatedAt, s.LastActivityAt)
		assert.True(t, s.LastActivityAt.Equal(ts0.Add(500*time.Millisecond)), "%s: times %v %v", name, s.CreatedAt, s.LastActivityAt)
		s.CreatedAt, s.LastActivityAt = time.Time{}, time.Time{}
		assert.Equal(t, want, *s, "%s:\n got  %+v\n want %+v", name, *s, want)
		// A wrapped reply is not unwrapped: all defaults.
		srv.setHandler(reply(200, `{"session":{"session_id":"s1"}}`))
		s, err = call()
		if assert.NoError(t, err, "%s wrapped", name) {
			assert.Empty(t, s.SessionID, "%s wrapped: %+v", name, s)
		}
		srv.setHandler(reply(200, `{"total_calls":1.5}`))
		_, err = call()
		wantDecode(t, err)
		srv.setHandler(reply(200, `{"allowed_actions":[1]}`))
		_, err = call()
		wantDecode(t, err)
	}
}
