package agenttrust

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func ptr[T any](v T) *T { return &v }

func TestWIMSEIssueTokenBody(t *testing.T) {
	srv := newRecServer(t, reply(200, `{"token":"wimse.jwt","workload_id":"spiffe://ati/agent/a1","trust_domain":"agenttrust.id","expires_at":"2026-01-01T00:00:00"}`))
	c := newTestClient(t, srv.URL)
	cases := []struct {
		p    WIMSETokenParams
		want string
	}{
		{WIMSETokenParams{AgentID: "a1", Audience: []string{}}, `{"agent_id":"a1"}`},
		{WIMSETokenParams{AgentID: "a1", ServiceName: ptr(""), Environment: ptr(""), TTLSeconds: ptr(0),
			Audience: []string{"x&y", "z"}, Proof: &WIMSEProof{Nonce: "n", TS: 7, Signature: "sig"}},
			`{"agent_id":"a1","service_name":"","environment":"","ttl_seconds":0,"audience":["x&y","z"],"proof":{"nonce":"n","ts":7,"signature":"sig"}}`},
	}
	for _, tc := range cases {
		srv.clear()
		got, err := c.WIMSE.IssueToken(ctxT(t), tc.p)
		require.NoError(t, err)
		r := srv.only(t)
		assert.Equal(t, "POST", r.Method, "%s %s", r.Method, r.Path)
		assert.Equal(t, "/api/v1/wimse/token", r.Path, "%s %s", r.Method, r.Path)
		assert.JSONEq(t, tc.want, string(r.Body))
		assert.Equal(t, strings.Join(keyOrder(t, []byte(tc.want)), ","), strings.Join(keyOrder(t, r.Body), ","), "key order %v", keyOrder(t, r.Body))
		assert.Equal(t, "wimse.jwt", got.Token, "reply %#v", got)
		assert.Equal(t, "2026-01-01T00:00:00", got.ExpiresAt, "reply %#v", got)
		assert.Equal(t, "spiffe://ati/agent/a1", got.WorkloadID, "reply %#v", got)
		assert.Equal(t, "agenttrust.id", got.TrustDomain, "reply %#v", got)
	}
	for _, body := range []string{`{}`, `{"token":""}`, `{"token":null,"workload_id":"w"}`, ``} {
		srv.setHandler(reply(200, body))
		_, err := c.WIMSE.IssueToken(ctxT(t), WIMSETokenParams{AgentID: "a1"})
		wantDecode(t, err)
	}
	srv.setHandler(reply(200, `{"token":5}`))
	_, err := c.WIMSE.IssueToken(ctxT(t), WIMSETokenParams{AgentID: "a1"})
	wantDecode(t, err)
}

func TestWIMSEVerifyAndChallenge(t *testing.T) {
	srv := newRecServer(t, reply(200, `{"valid":true,"agent_id":"a1","capabilities":["r"],"reason":""}`))
	c := newTestClient(t, srv.URL)
	v, err := c.WIMSE.VerifyToken(ctxT(t), "tok.en.x", "")
	require.NoError(t, err, "%v %#v", err, v)
	require.True(t, v.Valid, "%v %#v", err, v)
	require.Equal(t, "a1", v.AgentID, "%v %#v", err, v)
	require.Len(t, v.Capabilities, 1, "%v %#v", err, v)
	assert.JSONEq(t, `{"token":"tok.en.x"}`, string(srv.only(t).Body))
	srv.clear()
	_, err = c.WIMSE.VerifyToken(ctxT(t), "tok.en.x", "agenttrust.id")
	require.NoError(t, err)
	assert.JSONEq(t, `{"token":"tok.en.x","trust_domain_filter":"agenttrust.id"}`, string(srv.only(t).Body))

	// The token never appears in an error, even when the server echoes it.
	srv.setHandler(reply(400, `{"error":"bad token tok.en.x"}`))
	_, err = c.WIMSE.VerifyToken(ctxT(t), "tok.en.x", "")
	assert.Error(t, err, "err = %v", err)
	assert.NotContains(t, err.Error(), "tok.en.x", "err = %v", err)

	srv.clear()
	srv.setHandler(reply(201, `{"nonce":"n-1","expires_at":"2026-01-01T00:01:00Z"}`))
	ch, err := c.WIMSE.Challenge(ctxT(t), "a/1")
	require.NoError(t, err, "%v %#v", err, ch)
	require.Equal(t, "n-1", ch.Nonce, "%v %#v", err, ch)
	require.Equal(t, "2026-01-01T00:01:00Z", ch.ExpiresAt, "%v %#v", err, ch)
	r := srv.only(t)
	assert.Equal(t, "POST", r.Method, "challenge request %s %s len %d body %q", r.Method, r.EscapedPath, r.ContentLength, r.Body)
	assert.Equal(t, "/api/v1/agents/a%2F1/challenge", r.EscapedPath, "challenge request %s %s len %d body %q", r.Method, r.EscapedPath, r.ContentLength, r.Body)
	assert.Empty(t, r.Body, "challenge request %s %s len %d body %q", r.Method, r.EscapedPath, r.ContentLength, r.Body)
	assert.EqualValues(t, 0, r.ContentLength, "challenge request %s %s len %d body %q", r.Method, r.EscapedPath, r.ContentLength, r.Body)
	assert.Empty(t, r.TransferEncoding, "challenge request %s %s len %d body %q", r.Method, r.EscapedPath, r.ContentLength, r.Body)
	srv.clear()
	_, err = c.WIMSE.Challenge(ctxT(t), "")
	assert.ErrorIs(t, err, ErrValidation, "empty agent id: %v, %d requests", err, srv.count())
	assert.Equal(t, 0, srv.count(), "empty agent id: %v, %d requests", err, srv.count())
	for _, body := range []string{`{}`, `{"nonce":""}`, `{"expires_at":"x"}`} {
		srv.setHandler(reply(201, body))
		_, err := c.WIMSE.Challenge(ctxT(t), "a1")
		wantDecode(t, err)
	}
}

// countingStore counts Sign calls.
type countingStore struct {
	InMemoryKeyStore
	signs atomic.Int32
}

func (s *countingStore) Sign(ctx context.Context, agentID string, data []byte) ([]byte, error) {
	s.signs.Add(1)
	return s.InMemoryKeyStore.Sign(ctx, agentID, data)
}

// popServer answers challenges with nonce and tokens with token.
func popServer(t *testing.T, nonce, token string) *recServer {
	return newRecServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if strings.HasSuffix(r.URL.Path, "/challenge") {
			_, _ = w.Write([]byte(`{"nonce":"` + nonce + `","expires_at":"2026-01-01T00:01:00Z"}`))
			return
		}
		_, _ = w.Write([]byte(`{"token":"` + token + `","expires_at":"2026-01-01T01:00:00Z"}`))
	})
}

func TestWIMSEIssueTokenWithProofVector(t *testing.T) {
	srv := popServer(t, "nonce-1", "wimse.jwt")
	c := newTestClient(t, srv.URL, withNow(func() time.Time { return vecTime }))
	ks := &countingStore{}
	require.NoError(t, ks.Store(ctxT(t), "agent-1", vecPrivPEM))
	tok, err := c.WIMSE.IssueTokenWithProof(ctxT(t), WIMSEProofParams{AgentID: "agent-1", KeyStore: ks,
		TTLSeconds: ptr(600), Audience: []string{"aud-a", "aud-b"}})
	require.NoError(t, err)
	assert.Equal(t, "wimse.jwt", tok.Token, "token %v", tok)
	reqs := srv.requests()
	require.Len(t, reqs, 2, "requests %v", reqs)
	require.Equal(t, "/api/v1/agents/agent-1/challenge", reqs[0].Path, "requests %v", reqs)
	require.Equal(t, "/api/v1/wimse/token", reqs[1].Path, "requests %v", reqs)
	assert.JSONEq(t, `{"agent_id":"agent-1","ttl_seconds":600,"audience":["aud-a","aud-b"],"proof":{"nonce":"nonce-1","ts":1767225600,"signature":"`+vecPoPSig+`"}}`, string(reqs[1].Body))
	got := popMessage("nonce-1", "agent-1", []string{"aud-a", "aud-b"}, 1767225600)
	assert.Equal(t, vecPoPMessage, string(got), "message %q", got)
	got = popMessage("n", "a", nil, 5)
	assert.Equal(t, "pop-v1:n:a::5", string(got), "message without audience %q", got)
}

func TestWIMSEIssueTokenWithProofFailures(t *testing.T) {
	ks := &countingStore{}
	require.NoError(t, ks.Store(ctxT(t), "agent-1", vecPrivPEM))
	// A challenge without a nonce is never signed.
	srv := popServer(t, "", "wimse.jwt")
	c := newTestClient(t, srv.URL)
	_, err := c.WIMSE.IssueTokenWithProof(ctxT(t), WIMSEProofParams{AgentID: "agent-1", KeyStore: ks})
	wantDecode(t, err)
	assert.EqualValues(t, 0, ks.signs.Load(), "signed %d times, %d requests", ks.signs.Load(), srv.count())
	assert.Equal(t, 1, srv.count(), "signed %d times, %d requests", ks.signs.Load(), srv.count())
	// An empty token reply is a decode error.
	srv = popServer(t, "n", "")
	c = newTestClient(t, srv.URL)
	_, err = c.WIMSE.IssueTokenWithProof(ctxT(t), WIMSEProofParams{AgentID: "agent-1", KeyStore: ks})
	wantDecode(t, err)
	// A store without the key: typed error, the spent challenge said, no
	// token request.
	srv = popServer(t, "n", "wimse.jwt")
	c = newTestClient(t, srv.URL)
	_, err = c.WIMSE.IssueTokenWithProof(ctxT(t), WIMSEProofParams{AgentID: "agent-2", KeyStore: ks})
	assert.ErrorIs(t, err, ErrKeyNotFound, "unknown key: %v", err)
	assert.ErrorIs(t, err, ErrKeyStore, "unknown key: %v", err)
	assert.Contains(t, err.Error(), "challenge was spent", "unknown key: %v", err)
	assert.Equal(t, 1, srv.count(), "%d requests, want the challenge only", srv.count())
	// Missing inputs fail before any I/O.
	srv.clear()
	_, err = c.WIMSE.IssueTokenWithProof(ctxT(t), WIMSEProofParams{AgentID: "agent-1"})
	assert.ErrorIs(t, err, ErrValidation, "nil store: %v", err)
	_, err = c.WIMSE.IssueTokenWithProof(ctxT(t), WIMSEProofParams{KeyStore: ks})
	assert.ErrorIs(t, err, ErrValidation, "no agent: %v", err)
	assert.Equal(t, 0, srv.count(), "%d requests for invalid input", srv.count())
}

func TestWIMSEExpiry(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	cases := map[string]time.Time{
		"2026-01-01T13:00:00Z":      time.Date(2026, 1, 1, 13, 0, 0, 0, time.UTC),
		"2026-01-01T13:00:00":       time.Date(2026, 1, 1, 13, 0, 0, 0, time.UTC), // zone-less is UTC
		"2026-01-01T13:00:00.5":     time.Date(2026, 1, 1, 13, 0, 0, 5e8, time.UTC),
		"2026-01-01T15:00:00+02:00": time.Date(2026, 1, 1, 13, 0, 0, 0, time.UTC),
		"":                          now.Add(300 * time.Second),
		"soon":                      now.Add(300 * time.Second),
	}
	for in, want := range cases {
		got := wimseExpiry(in, now)
		assert.True(t, got.Equal(want), "%q: %v, want %v", in, got, want)
	}
}

func TestWIMSETypesHideSecrets(t *testing.T) {
	r := WIMSETokenResponse{Token: "eyJhbGciOiJFZERTQSJ9.secret.sig", WorkloadID: "w"}
	assertNoSecret(t, "WIMSETokenResponse", r, r.Token)
	assertNoSecret(t, "*WIMSETokenResponse", &r, r.Token)
	p := WIMSEProof{Nonce: "n", TS: 1, Signature: vecPoPSig}
	assertNoSecret(t, "WIMSEProof", p, vecPoPSig)
	assertNoSecret(t, "WIMSETokenParams", WIMSETokenParams{AgentID: "a", Proof: &p}, vecPoPSig)
}
