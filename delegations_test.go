package agenttrust

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const sampleDelegation = `{"id": "del-3", "from_agent_id": "a1", "to_agent_id": "a2", "scope": ["read"],
	"restrictions": {"max_calls": 5}, "delegation_chain": ["del-001", "del-003"],
	"expires_at": "2026-03-01T11:00:00+01:00", "revoked_at": null, "created_at": "2026-03-01T10:00:00Z"}`

func TestDelegationsCreate(t *testing.T) {
	ctx := context.Background()
	srv := newScriptServer(t)
	c := srv.client(t)
	for _, tc := range []struct {
		name string
		p    DelegationCreateParams
		want map[string]any
		keys []string
	}{
		{"defaults", DelegationCreateParams{FromAgentID: "a1", ToAgentID: "a2"},
			map[string]any{"from_agent_id": "a1", "to_agent_id": "a2", "scope": []any{}, "ttl_seconds": 3600},
			[]string{"from_agent_id", "to_agent_id", "scope", "ttl_seconds"}},
		{"empty restrictions and parent are sent",
			DelegationCreateParams{FromAgentID: "a1", ToAgentID: "a2", Scope: []string{}, TTLSeconds: 60, Restrictions: map[string]any{}, ParentDelegationID: Ptr("")},
			map[string]any{"from_agent_id": "a1", "to_agent_id": "a2", "scope": []any{}, "ttl_seconds": 60, "restrictions": map[string]any{}, "parent_delegation_id": ""},
			[]string{"from_agent_id", "to_agent_id", "scope", "ttl_seconds", "restrictions", "parent_delegation_id"}},
		{"everything, no validation",
			DelegationCreateParams{FromAgentID: "a1", ToAgentID: "a2", Scope: []string{"write", "read"}, TTLSeconds: -5, Restrictions: map[string]any{"ip": "10.0.0.0/8"}, ParentDelegationID: Ptr("del-1")},
			map[string]any{"from_agent_id": "a1", "to_agent_id": "a2", "scope": []any{"write", "read"}, "ttl_seconds": -5, "restrictions": map[string]any{"ip": "10.0.0.0/8"}, "parent_delegation_id": "del-1"},
			[]string{"from_agent_id", "to_agent_id", "scope", "ttl_seconds", "restrictions", "parent_delegation_id"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv.reset(scriptReply{status: 201, body: `{"delegation": ` + sampleDelegation + `}`})
			d, err := c.Delegations.Create(ctx, tc.p)
			require.NoError(t, err)
			r := srv.only(t)
			checkRequest(t, r, http.MethodPost, "/api/v1/delegations")
			checkBody(t, r, tc.want)
			assert.Equal(t, tc.keys, keyOrder(t, r.Body))
			checkDelegation(t, d)
		})
	}
	// Flat replies decode too; a null wrapper is not an object, so the top
	// level is decoded.
	srv.reset(scriptReply{body: sampleDelegation})
	d, err := c.Delegations.Create(ctx, DelegationCreateParams{})
	require.NoError(t, err)
	checkDelegation(t, d)
	srv.reset(scriptReply{body: `{"delegation": null, "id": "flat"}`})
	d, err = c.Delegations.Create(ctx, DelegationCreateParams{})
	require.NoError(t, err, "null wrapper: %+v", d)
	assert.Equal(t, "flat", d.ID, "null wrapper: %+v, %v", d, err)
}

func checkDelegation(t *testing.T, d *Delegation) {
	t.Helper()
	assert.Equal(t, "del-3", d.ID, "delegation = %+v", d)
	assert.Equal(t, "a1", d.FromAgentID, "delegation = %+v", d)
	assert.Equal(t, "a2", d.ToAgentID, "delegation = %+v", d)
	assert.Len(t, d.Scope, 1, "delegation = %+v", d)
	assert.Equal(t, float64(5), d.Restrictions["max_calls"], "delegation = %+v", d)
	require.Len(t, d.DelegationChain, 2, "delegation = %+v", d)
	assert.Equal(t, "del-003", d.DelegationChain[1], "delegation = %+v", d)
	assert.True(t, d.RevokedAt.IsZero(), "delegation = %+v", d)
	assert.True(t, d.ExpiresAt.Equal(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)), "delegation = %+v", d)
	assert.True(t, d.CreatedAt.Equal(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)), "delegation = %+v", d)
}

func TestDelegationsListRevokeSession(t *testing.T) {
	ctx := context.Background()
	srv := newScriptServer(t)
	c := srv.client(t)
	for _, body := range []string{`[` + sampleDelegation + `]`, `{"delegations": [` + sampleDelegation + `]}`} {
		srv.reset(scriptReply{body: body})
		list, err := c.Delegations.List(ctx, DelegationListParams{})
		require.NoError(t, err, "%v", list)
		require.Len(t, list, 1, "%v, %v", list, err)
		checkDelegation(t, &list[0])
		checkRequest(t, srv.only(t), http.MethodGet, "/api/v1/delegations")
	}
	// List elements are not unwrapped.
	srv.reset(scriptReply{body: `{"delegations": [{"delegation": {"id": "x"}}]}`})
	list, err := c.Delegations.List(ctx, DelegationListParams{})
	require.NoError(t, err, "wrapped element: %+v", list)
	assert.Empty(t, list[0].ID, "wrapped element: %+v, %v", list, err)
	srv.reset(scriptReply{body: `{"items": []}`})
	_, err = c.Delegations.List(ctx, DelegationListParams{})
	wantCode(t, err, CodeDecode)

	srv.reset(scriptReply{body: `<html>ok</html>`})
	assert.NoError(t, c.Delegations.Revoke(ctx, "del-3"), "revoke with a text reply")
	checkRequest(t, srv.only(t), http.MethodDelete, "/api/v1/delegations/del-3")

	srv.reset(scriptReply{body: `{"session_id": "sess-1", "agent_id": "a2", "source": "a2a", "mode": "read_only", "delegation_id": "del-3",
		"allowed_actions": ["read"], "total_calls": 2, "created_at": "2026-03-01T10:00:00Z"}`})
	s, err := c.Delegations.InitSession(ctx, "del-3")
	require.NoError(t, err)
	checkBodiless(t, srv.only(t), http.MethodPost)
	checkRequest(t, srv.only(t), http.MethodPost, "/api/v1/delegations/del-3/session")
	assert.Equal(t, "sess-1", s.SessionID, "session = %+v", s)
	assert.Equal(t, SessionSourceA2A, s.Source, "session = %+v", s)
	assert.Equal(t, "del-3", s.DelegationID, "session = %+v", s)
	assert.Equal(t, 2, s.TotalCalls, "session = %+v", s)
	assert.False(t, s.CreatedAt.IsZero(), "session = %+v", s)
}
