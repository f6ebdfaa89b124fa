package agenttrusttest

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
)

// testKey is an Ed25519 key pair from a fixed seed with its PKIX PEM.
type testKey struct {
	priv ed25519.PrivateKey
	pub  ed25519.PublicKey
	pem  string
}

func newTestKey(t *testing.T, seedByte byte) testKey {
	t.Helper()
	seed := make([]byte, ed25519.SeedSize)
	for i := range seed {
		seed[i] = seedByte
	}
	priv := ed25519.NewKeyFromSeed(seed)
	pub := priv.Public().(ed25519.PublicKey)
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{priv: priv, pub: pub, pem: string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))}
}

func createAgentBody(t *testing.T, name, publicKey string) string {
	t.Helper()
	body := map[string]any{"name": name, "framework": "custom", "capabilities": []string{"read"}, "metadata": map[string]any{}}
	if publicKey != "" {
		body["public_key"] = publicKey
	}
	return jsonBody(t, body)
}

func TestCreateAgentPublicKey(t *testing.T) {
	srv := NewTestServer(t)
	c := newClient(t, srv)
	k := newTestKey(t, 1)

	r := c.gw("POST", "/api/v1/agents", createAgentBody(t, "keyed", k.pem)).must(t, 201)
	ag, _ := r.json["agent"].(map[string]any)
	if ag["public_key"] != k.pem {
		t.Fatalf("create reply public_key %q, want the PEM sent", ag["public_key"])
	}
	id, _ := ag["id"].(string)
	got := c.gw("GET", "/api/v1/agents/"+id, "").must(t, 200)
	if g, _ := got.json["agent"].(map[string]any); g["public_key"] != k.pem {
		t.Fatalf("get public_key %q", g["public_key"])
	}

	// Older clients send no public_key: the agent is still created.
	r = c.gw("POST", "/api/v1/agents", createAgentBody(t, "legacy", "")).must(t, 201)
	if ag, _ := r.json["agent"].(map[string]any); ag["public_key"] != nil {
		t.Fatalf("legacy agent public_key %v, want absent", ag["public_key"])
	}

	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, _ := x509.MarshalPKIXPublicKey(&ecKey.PublicKey)
	ecPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: ecDER}))
	privDER, _ := x509.MarshalPKCS8PrivateKey(k.priv)
	privPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}))
	for name, bad := range map[string]string{
		"not PEM":     "ssh-ed25519 AAAA",
		"P-256 key":   ecPEM,
		"private key": privPEM,
		"trailing":    k.pem + "garbage",
	} {
		t.Run(name, func(t *testing.T) {
			r := c.gw("POST", "/api/v1/agents", createAgentBody(t, "bad-"+strings.ReplaceAll(name, " ", "-"), bad)).must(t, 400)
			if !strings.HasPrefix(r.errMsg(), `key "public_key" must be an Ed25519 public key`) {
				t.Fatalf("error %q", r.errMsg())
			}
			if strings.Contains(r.errMsg(), "MC4C") || strings.Contains(r.errMsg(), "MCow") {
				t.Fatalf("error echoes the key: %q", r.errMsg())
			}
		})
	}
	r = c.gw("POST", "/api/v1/agents", `{"name": "e", "framework": "custom", "capabilities": [], "metadata": {}, "public_key": ""}`).must(t, 400)
	if r.errMsg() != `key "public_key" must not be empty` {
		t.Fatalf("empty public_key: %q", r.errMsg())
	}
}
