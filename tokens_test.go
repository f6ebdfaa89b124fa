package agenttrust

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTokenDecoding(t *testing.T) {
	before := time.Now().UTC().Add(-time.Second)
	cases := []struct {
		name, body       string
		token, id, agent string
		scopes           []string
		issuedNow        bool
		issued, expires  time.Time
	}{
		{"primary keys", `{"token":"at_1","agent_id":"a","scopes":["r"],"audience":["x"],"issued_at":"2026-03-01T10:00:00Z","expires_at":"2026-03-01T10:05:00Z","token_id":"t1","id":"ignored","scope":["ignored"],"agent_token":"at_ignored"}`,
			"at_1", "t1", "a", []string{"r"}, false, ts0, ts0.Add(5 * time.Minute)},
		{"alternate keys", `{"agent_token":"at_2","scope":["w"],"id":"t2"}`, "at_2", "t2", "", []string{"w"}, true, time.Time{}, time.Time{}},
		{"nulls fall back", `{"token":null,"agent_token":"at_3","scopes":null,"scope":["s"],"token_id":null,"id":"t3","issued_at":null}`,
			"at_3", "t3", "", []string{"s"}, true, time.Time{}, time.Time{}},
		{"empty primary wins", `{"token":"","agent_token":"at_4","scopes":[],"scope":["s"]}`, "", "", "", []string{}, true, time.Time{}, time.Time{}},
		{"issued_at empty string", `{"issued_at":""}`, "", "", "", nil, true, time.Time{}, time.Time{}},
		{"issued_at malformed", `{"issued_at":"later"}`, "", "", "", nil, false, time.Time{}, time.Time{}},
		{"issued_at number", `{"issued_at":1700000000}`, "", "", "", nil, false, time.Time{}, time.Time{}},
		{"zone-less expiry", `{"expires_at":"2026-03-01T10:05:00.5"}`, "", "", "", nil, true, time.Time{}, ts0.Add(5*time.Minute + 500*time.Millisecond)},
	}
	srv := newRecServer(t, nil)
	c := newTestClient(t, srv.URL)
	for _, tc := range cases {
		srv.setHandler(reply(200, tc.body))
		tok, err := c.Tokens.Issue(ctxT(t), TokenIssueParams{AgentID: "a", NoCache: true})
		require.NoError(t, err, "%s", tc.name)
		assert.Equal(t, tc.token, tok.Token, "%s: got %q %q %q %#v %v", tc.name, tok.Token, tok.TokenID, tok.AgentID, tok.Scopes, tok.ExpiresAt)
		assert.Equal(t, tc.id, tok.TokenID, "%s: got %q %q %q %#v %v", tc.name, tok.Token, tok.TokenID, tok.AgentID, tok.Scopes, tok.ExpiresAt)
		assert.Equal(t, tc.agent, tok.AgentID, "%s: got %q %q %q %#v %v", tc.name, tok.Token, tok.TokenID, tok.AgentID, tok.Scopes, tok.ExpiresAt)
		assert.Equal(t, tc.scopes, tok.Scopes, "%s: got %q %q %q %#v %v", tc.name, tok.Token, tok.TokenID, tok.AgentID, tok.Scopes, tok.ExpiresAt)
		assert.True(t, tok.ExpiresAt.Equal(tc.expires), "%s: got %q %q %q %#v %v", tc.name, tok.Token, tok.TokenID, tok.AgentID, tok.Scopes, tok.ExpiresAt)
		if tc.issuedNow {
			assert.False(t, tok.IssuedAt.Before(before), "%s: IssuedAt %v, want now in UTC", tc.name, tok.IssuedAt)
			assert.False(t, tok.IssuedAt.After(time.Now().Add(time.Second)), "%s: IssuedAt %v, want now in UTC", tc.name, tok.IssuedAt)
			assert.Same(t, time.UTC, tok.IssuedAt.Location(), "%s: IssuedAt %v, want now in UTC", tc.name, tok.IssuedAt)
		} else {
			assert.True(t, tok.IssuedAt.Equal(tc.issued), "%s: IssuedAt %v, want %v", tc.name, tok.IssuedAt, tc.issued)
		}
	}
	for _, body := range []string{`{"token":5}`, `{"scopes":"r"}`, `{"agent_id":[]}`, `[]`, `{"token_id":1}`} {
		srv.setHandler(reply(200, body))
		_, err := c.Tokens.Issue(ctxT(t), TokenIssueParams{AgentID: "a", NoCache: true})
		wantDecode(t, err)
	}
}

func TestIntrospectionDecoding(t *testing.T) {
	srv := newRecServer(t, nil)
	c := newTestClient(t, srv.URL)
	srv.setHandler(reply(200, `{"active":true,"agent_id":"a1","org_id":"o1","scopes":["read"],"expires_at":"2026-03-01T10:00:00Z","valid":false,"scope":["x"]}`))
	r, err := c.Tokens.Introspect(ctxT(t), TokenIntrospectParams{Token: "at_x"})
	require.NoError(t, err, "%+v", r)
	assert.True(t, r.Active, "%+v %v", r, err)
	assert.Equal(t, "a1", r.AgentID, "%+v %v", r, err)
	assert.Equal(t, "o1", r.OrgID, "%+v %v", r, err)
	assert.Equal(t, []string{"read"}, r.Scopes, "%+v %v", r, err)
	assert.True(t, r.ExpiresAt.Equal(ts0), "%+v %v", r, err)
	srv.setHandler(reply(200, `{"active":false,"reasoning":"token revoked","expires_at":"nope"}`))
	r, err = c.Tokens.Verify(ctxT(t), TokenIntrospectParams{Token: "at_x"})
	require.NoError(t, err, "%+v", r)
	assert.False(t, r.Active, "%+v %v", r, err)
	assert.Equal(t, "token revoked", r.Reasoning, "%+v %v", r, err)
	assert.True(t, r.ExpiresAt.IsZero(), "%+v %v", r, err)
	srv.setHandler(reply(200, `{"valid":true,"scope":["x"]}`)) // no fallbacks for introspection
	r, err = c.Tokens.Introspect(ctxT(t), TokenIntrospectParams{Token: "at_x"})
	require.NoError(t, err, "%+v", r)
	assert.False(t, r.Active, "%+v %v", r, err)
	assert.Empty(t, r.Scopes, "%+v %v", r, err)
	for _, body := range []string{`{"active":"yes"}`, `{"scopes":"r"}`, `[]`} {
		srv.setHandler(reply(200, body))
		_, err := c.Tokens.Introspect(ctxT(t), TokenIntrospectParams{Token: "at_x"})
		wantDecode(t, err)
	}
}

// A token issued without issued_at is dated by the issuing client's clock,
// not by time.Now, through the cache and without it.
func TestTokenIssuedAtUsesClientClock(t *testing.T) {
	clock := newFakeClock(time.Date(2031, 5, 6, 7, 8, 9, 0, time.FixedZone("X", 3600)))
	exp := clock.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	srv := newRecServer(t, nil)
	c := newTestClient(t, srv.URL, withNow(clock.Now))
	for i, issued := range []string{``, `"issued_at":null,`, `"issued_at":"",`} {
		srv.setHandler(reply(200, `{`+issued+`"token":"at_x","expires_at":"`+exp+`"}`))
		for _, noCache := range []bool{true, false} {
			tok, err := c.Tokens.Issue(ctxT(t), TokenIssueParams{AgentID: "a" + string(rune('0'+i)), NoCache: noCache})
			require.NoError(t, err)
			assert.True(t, tok.IssuedAt.Equal(clock.Now()), "%q (no cache %v): IssuedAt %v, want the client clock's %v", issued, noCache, tok.IssuedAt, clock.Now().UTC())
			assert.Same(t, time.UTC, tok.IssuedAt.Location(), "%q (no cache %v): IssuedAt %v, want UTC", issued, noCache, tok.IssuedAt)
		}
	}
}
