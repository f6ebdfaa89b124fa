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
)

func TestAgentsCreateGeneratesKeyLocally(t *testing.T) {
	srv := newRecServer(t, reply(201, `{"id":"a1","name":"bot","private_key":"FROM-SERVER"}`))
	c := newTestClient(t, srv.URL)
	ks := NewInMemoryKeyStore()
	a, err := c.Agents.Create(ctxT(t), AgentCreateParams{Name: "bot", KeyStore: ks})
	if err != nil {
		t.Fatal(err)
	}
	req := srv.only(t)
	if strings.Contains(string(req.Body), "PRIVATE") || strings.Contains(string(req.Body), "MC4CAQAw") {
		t.Fatalf("the private key was sent: %s", req.Body)
	}
	if got := keyOrder(t, req.Body); strings.Join(got, ",") != "name,framework,capabilities,metadata,public_key" {
		t.Errorf("key order %v", got)
	}
	sentPub := decodeMap(t, req.Body)["public_key"].(string)
	pub, err := ParsePublicKeyPEM(sentPub)
	if err != nil {
		t.Fatalf("sent public key: %v", err)
	}
	// The generated private key replaces what the server sent, and the
	// public key is filled although the reply did not echo it.
	priv, err := ParsePrivateKeyPEM(a.PrivateKey)
	if err != nil {
		t.Fatalf("Agent.PrivateKey: %v", err)
	}
	if !pub.Equal(priv.Public()) || a.PublicKey != sentPub {
		t.Errorf("key pair mismatch: public %q", a.PublicKey)
	}
	sig, err := ks.Sign(ctxT(t), "a1", []byte("m"))
	if err != nil || !ed25519.Verify(pub, []byte("m"), sig) {
		t.Errorf("key store does not hold the agent's key: %v", err)
	}

	// A second agent gets a different key; an echoed public key is kept.
	srv.setHandler(reply(201, `{"id":"a2","public_key":"ECHO"}`))
	b, err := c.Agents.Create(ctxT(t), AgentCreateParams{Name: "bot2"})
	if err != nil {
		t.Fatal(err)
	}
	if b.PublicKey != "ECHO" || b.PrivateKey == a.PrivateKey || b.PrivateKey == "" {
		t.Errorf("second agent: %v", b)
	}
	if ks.Len() != 1 {
		t.Errorf("a store that was not asked for was filled")
	}
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
		assertValidation(t, name, err)
	}
	_, err := c.Agents.Create(ctxT(t), AgentCreateParams{Name: "bot", PublicKey: vecPubPEM, KeyStore: NewInMemoryKeyStore()})
	assertValidation(t, "KeyStore with PublicKey", err)
	if n := srv.count(); n != 0 {
		t.Fatalf("%d requests sent for invalid input", n)
	}
	a, err := c.Agents.Create(ctxT(t), AgentCreateParams{Name: "bot", PublicKey: vecPubPEM})
	if err != nil {
		t.Fatal(err)
	}
	if a.PrivateKey != "" || a.PublicKey != "" {
		t.Errorf("caller key: the SDK invented key fields: %v", a)
	}
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
	if !errors.Is(err, ErrKeyStore) || !errors.Is(err, cause) || errors.Is(err, ErrNetwork) {
		t.Fatalf("err = %v", err)
	}
	if a == nil || a.ID != "a1" || a.PrivateKey == "" {
		t.Fatalf("the created agent and its key were lost: %v", a)
	}
	if strings.Contains(err.Error(), a.PrivateKey[30:60]) {
		t.Error("error reveals the private key")
	}
	// A failed create stores nothing.
	srv.setHandler(reply(500, `{"error":"boom"}`))
	ks := NewInMemoryKeyStore()
	if _, err := c.Agents.Create(ctxT(t), AgentCreateParams{Name: "bot", KeyStore: ks}); err == nil || ks.Len() != 0 {
		t.Errorf("failed create: err %v, stored %d", err, ks.Len())
	}
}

func TestAgentHidesPrivateKey(t *testing.T) {
	a := Agent{ID: "a1", Name: "bot", PublicKey: vecPubPEM, PrivateKey: vecPrivPEM}
	body := strings.Split(vecPrivPEM, "\n")[1]
	assertNoSecret(t, "Agent", a, body)
	assertNoSecret(t, "*Agent", &a, body)
	assertNoSecret(t, "[]Agent", []Agent{a}, body)
	if !strings.Contains(a.String(), `"a1"`) {
		t.Errorf("String() = %s", a)
	}
}
