package agenttrust

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAgentDecoding(t *testing.T) {
	srv := newRecServer(t, nil)
	c := newTestClient(t, srv.URL)
	full := `{"id":"a1","name":"bot","org_id":"o1","framework":"langchain","public_key":"PEM","status":"suspended",
		"capabilities":["r"],"metadata":{"k":1},"created_at":"2026-03-01T10:00:00Z","private_key":"PRIV","extra":true}`
	want := Agent{ID: "a1", Name: "bot", OrgID: "o1", Framework: "langchain", PublicKey: "PEM", Status: AgentStatusSuspended,
		Capabilities: []string{"r"}, Metadata: map[string]any{"k": float64(1)}, CreatedAt: ts0, PrivateKey: "PRIV"}
	defaults := Agent{Framework: "custom", Status: AgentStatusActive}
	cases := []struct {
		name, body string
		want       Agent
	}{
		{"flat", full, want},
		{"wrapped", `{"agent":` + full + `,"id":"outer"}`, want},
		{"empty body", ``, defaults},
		{"null body", `null`, defaults},
		{"empty object", `{}`, defaults},
		{"nulls", `{"id":null,"framework":null,"status":null,"capabilities":null,"metadata":null,"created_at":null}`, defaults},
		{"unknown status kept", `{"status":"quarantined"}`, Agent{Framework: "custom", Status: "quarantined"}},
		{"bad timestamp", `{"id":"a","created_at":"yesterday"}`, Agent{ID: "a", Framework: "custom", Status: "active"}},
		{"wrapper null", `{"agent":null,"id":"x"}`, Agent{ID: "x", Framework: "custom", Status: "active"}},
	}
	for _, tc := range cases {
		srv.setHandler(reply(201, tc.body))
		for _, get := range []bool{false, true} {
			var a *Agent
			var err error
			if get {
				a, err = c.Agents.Get(ctxT(t), "a1")
			} else {
				// A caller-supplied key: nothing is generated, so the
				// decoded model is exactly what the server sent.
				a, err = c.Agents.Create(ctxT(t), AgentCreateParams{Name: "bot", PublicKey: vecPubPEM})
			}
			require.NoError(t, err, "%s", tc.name)
			assert.True(t, a.CreatedAt.Equal(tc.want.CreatedAt), "%s: created_at %v", tc.name, a.CreatedAt)
			a.CreatedAt = tc.want.CreatedAt
			assert.Equal(t, tc.want, *a, "%s:\n got  %#v\n want %#v", tc.name, *a, tc.want)
		}
	}
	for _, body := range []string{`{"name":5}`, `{"capabilities":"r"}`, `{"capabilities":[1]}`, `{"metadata":[]}`,
		`{"status":1}`, `[]`, `"agent"`, `{"agent":{"id":false}}`} {
		srv.setHandler(reply(200, body))
		_, err := c.Agents.Get(ctxT(t), "a1")
		wantDecode(t, err)
	}
}

func TestAgentListDecoding(t *testing.T) {
	srv := newRecServer(t, nil)
	c := newTestClient(t, srv.URL)
	for body, n := range map[string]int{`[{"id":"a"},{"id":"b","status":"revoked"}]`: 2, `{"agents":[{"id":"a"}],"total":9}`: 1,
		`{"agents":null}`: 0, ``: 0} {
		srv.setHandler(reply(200, body))
		l, err := c.Agents.List(ctxT(t), AgentListParams{})
		require.NoError(t, err, "%q: %v", body, l)
		require.Len(t, l, n, "%q: %v %v", body, l, err)
		assert.NotNil(t, l, "%q: %v %v", body, l, err)
		for _, a := range l {
			assert.Equal(t, Framework("custom"), a.Framework, "list element without defaults: %+v", a)
			assert.NotEmpty(t, a.Status, "list element without defaults: %+v", a)
		}
	}
	for _, body := range []string{`{"unexpected":"shape"}`, `{"agents":{}}`, `[1]`, `[{"id":1}]`} {
		srv.setHandler(reply(200, body))
		_, err := c.Agents.List(ctxT(t), AgentListParams{})
		wantDecode(t, err)
	}
}

func TestAgentsCreateGeneratesKeyLocally(t *testing.T) {
	srv := newRecServer(t, reply(201, `{"id":"a1","name":"bot","private_key":"FROM-SERVER"}`))
	c := newTestClient(t, srv.URL)
	ks := NewInMemoryKeyStore()
	a, err := c.Agents.Create(ctxT(t), AgentCreateParams{Name: "bot", KeyStore: ks})
	require.NoError(t, err)
	req := srv.only(t)
	require.NotContains(t, string(req.Body), "PRIVATE", "the private key was sent: %s", req.Body)
	require.NotContains(t, string(req.Body), "MC4CAQAw", "the private key was sent: %s", req.Body)
	got := keyOrder(t, req.Body)
	assert.Equal(t, "name,framework,capabilities,metadata,public_key", strings.Join(got, ","), "key order %v", got)
	sentPub := decodeMap(t, req.Body)["public_key"].(string)
	pub, err := ParsePublicKeyPEM(sentPub)
	require.NoError(t, err, "sent public key")
	// The generated private key replaces what the server sent, and the
	// public key is filled although the reply did not echo it.
	priv, err := ParsePrivateKeyPEM(a.PrivateKey)
	require.NoError(t, err, "Agent.PrivateKey")
	assert.True(t, pub.Equal(priv.Public()), "key pair mismatch: public %q", a.PublicKey)
	assert.Equal(t, sentPub, a.PublicKey, "key pair mismatch: public %q", a.PublicKey)
	sig, err := ks.Sign(ctxT(t), "a1", []byte("m"))
	require.NoError(t, err, "key store does not hold the agent's key")
	assert.True(t, ed25519.Verify(pub, []byte("m"), sig), "key store does not hold the agent's key: %v", err)

	// A second agent gets a different key; an echoed public key is kept.
	srv.setHandler(reply(201, `{"id":"a2","public_key":"ECHO"}`))
	b, err := c.Agents.Create(ctxT(t), AgentCreateParams{Name: "bot2"})
	require.NoError(t, err)
	assert.Equal(t, "ECHO", b.PublicKey, "second agent: %v", b)
	assert.NotEqual(t, a.PrivateKey, b.PrivateKey, "second agent: %v", b)
	assert.NotEmpty(t, b.PrivateKey, "second agent: %v", b)
	assert.Equal(t, 1, ks.Len(), "a store that was not asked for was filled")
}

func TestAgentsCreateValidatesPublicKeyBeforeIO(t *testing.T) {
	srv := newRecServer(t, reply(201, `{"id":"a1"}`))
	c := newTestClient(t, srv.URL)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecDER, _ := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	for name, pk := range map[string]string{
		"not PEM":     "ssh-ed25519 AAAA",
		"P-256":       pemOf(t, "PUBLIC KEY", ecDER),
		"private key": vecPrivPEM,
	} {
		_, err := c.Agents.Create(ctxT(t), AgentCreateParams{Name: "bot", PublicKey: pk})
		wantValidation(t, err, name)
	}
	_, err := c.Agents.Create(ctxT(t), AgentCreateParams{Name: "bot", PublicKey: vecPubPEM, KeyStore: NewInMemoryKeyStore()})
	wantValidation(t, err, "KeyStore with PublicKey")
	n := srv.count()
	require.Equal(t, 0, n, "%d requests sent for invalid input", n)
	a, err := c.Agents.Create(ctxT(t), AgentCreateParams{Name: "bot", PublicKey: vecPubPEM})
	require.NoError(t, err)
	assert.Empty(t, a.PrivateKey, "caller key: the SDK invented key fields: %v", a)
	assert.Empty(t, a.PublicKey, "caller key: the SDK invented key fields: %v", a)
}

type failingStore struct {
	InMemoryKeyStore
	err error
}

func (f *failingStore) Store(context.Context, string, string) error { return f.err }

func TestAgentsCreateKeyStoreFailureKeepsKey(t *testing.T) {
	srv := newRecServer(t, reply(201, `{"id":"a1"}`))
	c := newTestClient(t, srv.URL)
	cause := errors.New("keychain locked")
	a, err := c.Agents.Create(ctxT(t), AgentCreateParams{Name: "bot", KeyStore: &failingStore{err: cause}})
	require.ErrorIs(t, err, ErrKeyStore, "err = %v", err)
	require.ErrorIs(t, err, cause, "err = %v", err)
	require.NotErrorIs(t, err, ErrNetwork, "err = %v", err)
	require.NotNil(t, a, "the created agent and its key were lost: %v", a)
	require.Equal(t, "a1", a.ID, "the created agent and its key were lost: %v", a)
	require.NotEmpty(t, a.PrivateKey, "the created agent and its key were lost: %v", a)
	assert.NotContains(t, err.Error(), a.PrivateKey[30:60], "error reveals the private key")
	// A failed create stores nothing.
	srv.setHandler(reply(500, `{"error":"boom"}`))
	ks := NewInMemoryKeyStore()
	_, err = c.Agents.Create(ctxT(t), AgentCreateParams{Name: "bot", KeyStore: ks})
	assert.Error(t, err, "failed create: err %v, stored %d", err, ks.Len())
	assert.Equal(t, 0, ks.Len(), "failed create: err %v, stored %d", err, ks.Len())
}

func TestAgentHidesPrivateKey(t *testing.T) {
	a := Agent{ID: "a1", Name: "bot", PublicKey: vecPubPEM, PrivateKey: vecPrivPEM}
	body := strings.Split(vecPrivPEM, "\n")[1]
	assertNoSecret(t, "Agent", a, body)
	assertNoSecret(t, "*Agent", &a, body)
	assertNoSecret(t, "[]Agent", []Agent{a}, body)
	assert.Contains(t, a.String(), `"a1"`, "String() = %s", a)
}
