package agenttrusttest

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
	require.NoError(t, err)
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
	require.Equal(t, k.pem, ag["public_key"], "create reply public_key %q, want the PEM sent", ag["public_key"])
	id, _ := ag["id"].(string)
	got := c.gw("GET", "/api/v1/agents/"+id, "").must(t, 200)
	g, _ := got.json["agent"].(map[string]any)
	require.Equal(t, k.pem, g["public_key"], "get public_key %q", g["public_key"])

	// Older clients send no public_key: the agent is still created.
	r = c.gw("POST", "/api/v1/agents", createAgentBody(t, "legacy", "")).must(t, 201)
	ag, _ = r.json["agent"].(map[string]any)
	require.Nil(t, ag["public_key"], "legacy agent public_key %v, want absent", ag["public_key"])

	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
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
			require.True(t, strings.HasPrefix(r.errMsg(), `key "public_key" must be an Ed25519 public key`), "error %q", r.errMsg())
			require.NotContains(t, r.errMsg(), "MC4C", "error echoes the key: %q", r.errMsg())
			require.NotContains(t, r.errMsg(), "MCow", "error echoes the key: %q", r.errMsg())
		})
	}
	r = c.gw("POST", "/api/v1/agents", `{"name": "e", "framework": "custom", "capabilities": [], "metadata": {}, "public_key": ""}`).must(t, 400)
	require.Equal(t, `key "public_key" must not be empty`, r.errMsg(), "empty public_key: %q", r.errMsg())
}

// --- helpers that build proofs with crypto/ed25519 directly ---

var b64 = base64.RawURLEncoding

func popSignature(priv ed25519.PrivateKey, nonce, agentID, aud string, ts int64) string {
	msg := fmt.Sprintf("pop-v1:%s:%s:%s:%d", nonce, agentID, aud, ts)
	return b64.EncodeToString(ed25519.Sign(priv, []byte(msg)))
}

func (c *tclient) challenge(agentID string) string {
	c.t.Helper()
	r := c.gw("POST", "/api/v1/agents/"+agentID+"/challenge", "").must(c.t, 200)
	n := r.str("nonce")
	require.NotEqual(c.t, "", n, "challenge reply %s", r.raw)
	require.NotEqual(c.t, "", r.str("expires_at"), "challenge reply %s", r.raw)
	return n
}

func tokenBody(t *testing.T, agentID string, audience []string, proof map[string]any) string {
	t.Helper()
	body := map[string]any{"agent_id": agentID}
	if len(audience) > 0 {
		body["audience"] = audience
	}
	if proof != nil {
		body["proof"] = proof
	}
	return jsonBody(t, body)
}

func proofOf(nonce string, ts int64, sig string) map[string]any {
	return map[string]any{"nonce": nonce, "ts": ts, "signature": sig}
}

// popToken runs the whole PoP flow and returns the WIMSE token.
func (c *tclient) popToken(k testKey, agentID string) string {
	c.t.Helper()
	nonce := c.challenge(agentID)
	now := c.srv.Now().Unix()
	r := c.gw("POST", "/api/v1/wimse/token", tokenBody(c.t, agentID, nil, proofOf(nonce, now, popSignature(k.priv, nonce, agentID, "", now)))).must(c.t, 200)
	return r.str("token")
}

// dpop is a DPoP proof under construction; mint signs it.
type dpop struct {
	typ, alg string
	jwkKey   ed25519.PublicKey // key put in the header
	signer   ed25519.PrivateKey
	htm, htu string
	iat      int64
	jti      string
	ath      *string
}

func newDPoP(k testKey, method, htu, token string, iat int64) *dpop {
	sum := sha256.Sum256([]byte(token))
	ath := b64.EncodeToString(sum[:])
	return &dpop{typ: "dpop+jwt", alg: "EdDSA", jwkKey: k.pub, signer: k.priv, htm: method, htu: htu, iat: iat, jti: randomHex(16), ath: &ath}
}

func (d *dpop) mint() string {
	hdr := fmt.Sprintf(`{"typ":%q,"alg":%q,"jwk":{"kty":"OKP","crv":"Ed25519","x":%q}}`, d.typ, d.alg, b64.EncodeToString(d.jwkKey))
	pay := fmt.Sprintf(`{"htm":%q,"htu":%q,"iat":%d,"jti":%q`, d.htm, d.htu, d.iat, d.jti)
	if d.ath != nil {
		pay += fmt.Sprintf(`,"ath":%q`, *d.ath)
	}
	pay += "}"
	input := b64.EncodeToString([]byte(hdr)) + "." + b64.EncodeToString([]byte(pay))
	return input + "." + b64.EncodeToString(ed25519.Sign(d.signer, []byte(input)))
}

// check sends an action check to url with the given credential headers
// ("" leaves a header out).
func (c *tclient) checkWith(url, agentID, token, proof string) resp {
	c.t.Helper()
	hdr := map[string]string{}
	if token != "" {
		hdr["Authorization"] = "Bearer " + token
	}
	if proof != "" {
		hdr["DPoP"] = proof
	}
	return c.doHeaders("POST", url, checkBody(agentID, "", "read_file"), hdr)
}

func lastRejection(t *testing.T, srv *Server) IdentityRejection {
	t.Helper()
	rs := srv.IdentityRejections()
	require.NotEmpty(t, rs, "no identity rejection recorded")
	return rs[len(rs)-1]
}

// jwtParts decodes a JWT's header and claims and verifies its signature.
func jwtClaims(t *testing.T, token string, key ed25519.PublicKey) (map[string]any, map[string]any) {
	t.Helper()
	parts := strings.Split(token, ".")
	require.Len(t, parts, 3, "token %q is not a JWS", token)
	sig, err := b64.DecodeString(parts[2])
	require.NoError(t, err, "token signature does not verify under the fake's key")
	require.True(t, ed25519.Verify(key, []byte(parts[0]+"."+parts[1]), sig), "token signature does not verify under the fake's key")
	var hdr, claims map[string]any
	h, _ := b64.DecodeString(parts[0])
	p, _ := b64.DecodeString(parts[1])
	require.NoError(t, json.Unmarshal(h, &hdr), "token parts are not JSON")
	require.NoError(t, json.Unmarshal(p, &claims), "token parts are not JSON")
	return hdr, claims
}

// --- tests ---

func TestJWKThumbprintRFC8037Vector(t *testing.T) {
	// RFC 8037 appendix A.3.
	x, err := b64.DecodeString("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
	require.NoError(t, err)
	got := JWKThumbprint(x)
	require.Equal(t, "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k", got, "thumbprint %s", got)
}

func TestSecuritySettingsEndpoints(t *testing.T) {
	srv := NewTestServer(t)
	c := newClient(t, srv)
	r := c.gw("GET", "/api/v1/orgs/security-settings", "").must(t, 200)
	require.Equal(t, false, r.json["require_proof_of_possession"], "defaults %s", r.raw)
	require.Equal(t, false, r.json["require_sender_constrained_tokens"], "defaults %s", r.raw)
	c.gw("PUT", "/api/v1/orgs/security-settings", `{"require_proof_of_possession": true, "require_sender_constrained_tokens": false}`).must(t, 200)
	got := srv.SecuritySettings()
	require.Equal(t, SecuritySettings{RequireProofOfPossession: true}, got, "after PUT %+v", got)
	srv.SetSecuritySettings(SecuritySettings{RequireSenderConstrainedTokens: true})
	r = c.gw("GET", "/api/v1/orgs/security-settings", "").must(t, 200)
	require.Equal(t, false, r.json["require_proof_of_possession"], "after SetSecuritySettings %s", r.raw)
	require.Equal(t, true, r.json["require_sender_constrained_tokens"], "after SetSecuritySettings %s", r.raw)
	for body, msg := range map[string]string{
		`{"require_proof_of_possession": true}`:                                                     `missing required key "require_sender_constrained_tokens"`,
		`{"require_proof_of_possession": 1, "require_sender_constrained_tokens": false}`:            `key "require_proof_of_possession" must be a boolean`,
		`{"require_proof_of_possession": true, "require_sender_constrained_tokens": false, "x": 1}`: `unknown key "x"`,
	} {
		got := c.gw("PUT", "/api/v1/orgs/security-settings", body).must(t, 400).errMsg()
		assert.Equal(t, msg, got, "PUT %s: %q, want %q", body, got, msg)
	}
	require.Equal(t, SecuritySettings{RequireSenderConstrainedTokens: true}, srv.SecuritySettings(), "a refused PUT changed the settings")
}

func TestChallenge(t *testing.T) {
	srv := NewTestServer(t)
	c := newClient(t, srv)
	id := srv.CreateAgent("bot")
	r := c.gw("POST", "/api/v1/agents/"+id+"/challenge", "").must(t, 200)
	exp, err := time.Parse(time.RFC3339, r.str("expires_at"))
	require.NoError(t, err, "expires_at %q (%v)", r.str("expires_at"), err)
	require.True(t, exp.Equal(srv.Now().Add(ChallengeTTL).Truncate(time.Second)), "expires_at %q (%v)", r.str("expires_at"), err)
	n1, n2 := r.str("nonce"), c.challenge(id)
	require.NotEqual(t, n2, n1, "nonces %q %q", n1, n2)
	require.GreaterOrEqual(t, len(n1), 16, "nonces %q %q", n1, n2)
	c.gw("POST", "/api/v1/agents/"+id+"/challenge", `{}`).must(t, 400) // bodiless
	c.gw("POST", "/api/v1/agents/nobody/challenge", "").must(t, 404)
	c.gw("POST", "/api/v1/agents/"+id+"/revoke", `{"reason": "x"}`).must(t, 200)
	c.gw("POST", "/api/v1/agents/"+id+"/challenge", "").must(t, 403)
}

func TestWIMSETokenWithProof(t *testing.T) {
	srv := NewTestServer(t)
	// A still clock: expires_at is compared with now+ttl to the second.
	start := time.Now()
	srv.SetClock(func() time.Time { return start })
	srv.SetSecuritySettings(SecuritySettings{RequireProofOfPossession: true})
	c := newClient(t, srv)
	k := newTestKey(t, 7)
	id := srv.SeedAgent(AgentSeed{Name: "bot", Capabilities: []string{"read", "write"}, PublicKey: k.pem})

	nonce := c.challenge(id)
	now := srv.Now().Unix()
	sig := popSignature(k.priv, nonce, id, "svc-a,svc-b", now)
	require.Len(t, sig, 86, "signature length %d", len(sig))
	body := jsonBody(t, map[string]any{"agent_id": id, "ttl_seconds": 120, "audience": []string{"svc-a", "svc-b"}, "proof": proofOf(nonce, now, sig)})
	r := c.gw("POST", "/api/v1/wimse/token", body).must(t, 200)
	token := r.str("token")
	require.Equal(t, "spiffe://agenttrust.id/agent/"+id, r.str("workload_id"), "reply %s", r.raw)
	require.Equal(t, "agenttrust.id", r.str("trust_domain"), "reply %s", r.raw)
	exp, _ := time.Parse(time.RFC3339, r.str("expires_at"))
	require.Equal(t, now+120, exp.Unix(), "expires_at %s, want now+120s", r.str("expires_at"))
	hdr, claims := jwtClaims(t, token, srv.WIMSESigningKey())
	sum := sha256.Sum256([]byte(`{"crv":"Ed25519","kty":"OKP","x":"` + b64.EncodeToString(k.pub) + `"}`))
	cnf, _ := claims["cnf"].(map[string]any)
	require.Equal(t, "EdDSA", hdr["alg"], "header %v claims %v", hdr, claims)
	require.Equal(t, b64.EncodeToString(sum[:]), cnf["jkt"], "header %v claims %v", hdr, claims)
	require.Equal(t, id, claims["agent_id"], "header %v claims %v", hdr, claims)
	require.Equal(t, float64(now+120), claims["exp"], "claims %v", claims)
	require.Equal(t, "[svc-a svc-b]", fmt.Sprint(claims["aud"]), "claims %v", claims)

	v := c.gw("POST", "/api/v1/wimse/verify", jsonBody(t, map[string]any{"token": token})).must(t, 200)
	require.Equal(t, true, v.json["valid"], "verify %s", v.raw)
	require.Equal(t, id, v.str("agent_id"), "verify %s", v.raw)
	require.Equal(t, r.str("workload_id"), v.str("workload_id"), "verify %s", v.raw)
	require.Equal(t, "read,write", strings.Join(strs(v.json["capabilities"]), ","), "verify %s", v.raw)
	pops := srv.PoPProofs()
	require.Len(t, pops, 1, "PoP records %+v", pops)
	require.True(t, pops[0].Accepted, "PoP records %+v", pops)
	require.Equal(t, fmt.Sprintf("pop-v1:%s:%s:svc-a,svc-b:%d", nonce, id, now), pops[0].Message, "PoP records %+v", pops)
	toks := srv.WIMSETokens()
	require.Len(t, toks, 1, "token records %+v", toks)
	require.Equal(t, token, toks[0].Token, "token records %+v", toks)
	require.True(t, toks[0].WithProof, "token records %+v", toks)
	require.Equal(t, cnf["jkt"], toks[0].JKT, "token records %+v", toks)
	require.Len(t, srv.IdentityRejections(), 0, "rejections %+v", srv.IdentityRejections())
}

func TestWIMSETokenRefusals(t *testing.T) {
	srv := NewTestServer(t)
	srv.SetSecuritySettings(SecuritySettings{RequireProofOfPossession: true})
	c := newClient(t, srv)
	k := newTestKey(t, 1)
	other := newTestKey(t, 2)
	id := srv.SeedAgent(AgentSeed{Name: "bot", PublicKey: k.pem})
	id2 := srv.SeedAgent(AgentSeed{Name: "bot2", PublicKey: other.pem})
	legacy := srv.CreateAgent("legacy")

	cases := []struct {
		name   string
		agent  string
		body   func() string
		reason RejectionReason
	}{
		{"no proof", id, func() string { return tokenBody(t, id, nil, nil) }, ReasonMissingProof},
		{"wrong key", id, func() string {
			n, now := c.challenge(id), srv.Now().Unix()
			return tokenBody(t, id, nil, proofOf(n, now, popSignature(other.priv, n, id, "", now)))
		}, ReasonBadSignature},
		{"altered message: audience", id, func() string {
			n, now := c.challenge(id), srv.Now().Unix()
			return tokenBody(t, id, []string{"svc-b"}, proofOf(n, now, popSignature(k.priv, n, id, "svc-a", now)))
		}, ReasonBadSignature},
		{"altered message: ts", id, func() string {
			n, now := c.challenge(id), srv.Now().Unix()
			return tokenBody(t, id, nil, proofOf(n, now-1, popSignature(k.priv, n, id, "", now)))
		}, ReasonBadSignature},
		{"padded signature", id, func() string {
			n, now := c.challenge(id), srv.Now().Unix()
			return tokenBody(t, id, nil, proofOf(n, now, popSignature(k.priv, n, id, "", now)+"=="))
		}, ReasonBadSignature},
		{"unknown nonce", id, func() string {
			now := srv.Now().Unix()
			return tokenBody(t, id, nil, proofOf("feedface", now, popSignature(k.priv, "feedface", id, "", now)))
		}, ReasonNonceUnknown},
		{"nonce of another agent", id, func() string {
			n, now := c.challenge(id2), srv.Now().Unix()
			return tokenBody(t, id, nil, proofOf(n, now, popSignature(k.priv, n, id, "", now)))
		}, ReasonNonceUnknown},
		{"reused nonce", id, func() string {
			n, now := c.challenge(id), srv.Now().Unix()
			b := tokenBody(t, id, nil, proofOf(n, now, popSignature(k.priv, n, id, "", now)))
			c.gw("POST", "/api/v1/wimse/token", b).must(t, 200)
			return b
		}, ReasonNonceReused},
		{"expired nonce", id, func() string {
			n := c.challenge(id)
			srv.Advance(ChallengeTTL)
			now := srv.Now().Unix()
			return tokenBody(t, id, nil, proofOf(n, now, popSignature(k.priv, n, id, "", now)))
		}, ReasonNonceExpired},
		{"old ts", id, func() string {
			n, old := c.challenge(id), srv.Now().Add(-ProofWindow-time.Second).Unix()
			return tokenBody(t, id, nil, proofOf(n, old, popSignature(k.priv, n, id, "", old)))
		}, ReasonTSOutOfWindow},
		{"future ts", id, func() string {
			n, fut := c.challenge(id), srv.Now().Add(ProofWindow+time.Second).Unix()
			return tokenBody(t, id, nil, proofOf(n, fut, popSignature(k.priv, n, id, "", fut)))
		}, ReasonTSOutOfWindow},
		{"agent without key", legacy, func() string {
			n, now := c.challenge(legacy), srv.Now().Unix()
			return tokenBody(t, legacy, nil, proofOf(n, now, popSignature(k.priv, n, legacy, "", now)))
		}, ReasonNoPublicKey},
		{"legacy agent, PoP required", legacy, func() string { return tokenBody(t, legacy, nil, nil) }, ReasonMissingProof},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := tc.body()
			before := len(srv.WIMSETokens())
			r := c.gw("POST", "/api/v1/wimse/token", body).must(t, 401)
			rej := lastRejection(t, srv)
			require.Equal(t, tc.reason, rej.Reason, "rejection %+v, want reason %s; reply %s", rej, tc.reason, r.raw)
			require.Equal(t, tc.agent, rej.AgentID, "rejection %+v, want reason %s; reply %s", rej, tc.reason, r.raw)
			require.Equal(t, "POST /api/v1/wimse/token", rej.Endpoint, "rejection %+v, want reason %s; reply %s", rej, tc.reason, r.raw)
			require.Equal(t, r.errMsg(), rej.Message, "rejection %+v, want reason %s; reply %s", rej, tc.reason, r.raw)
			require.Len(t, srv.WIMSETokens(), before, "a token was issued for a refused request")
		})
	}

	// A nonce whose proof failed is spent: the correct proof is refused too.
	n, now := c.challenge(id), srv.Now().Unix()
	c.gw("POST", "/api/v1/wimse/token", tokenBody(t, id, nil, proofOf(n, now, popSignature(other.priv, n, id, "", now)))).must(t, 401)
	c.gw("POST", "/api/v1/wimse/token", tokenBody(t, id, nil, proofOf(n, now, popSignature(k.priv, n, id, "", now)))).must(t, 401)
	r := lastRejection(t, srv)
	require.Equal(t, ReasonNonceReused, r.Reason, "reason %s", r.Reason)

	// Malformed bodies are 400s, not proof failures.
	for body, msg := range map[string]string{
		`{"agent_id": "` + id + `", "proof": {"nonce": "n", "ts": 1.5, "signature": "s"}}`:       `key "proof.ts" must be an integer`,
		`{"agent_id": "` + id + `", "proof": {"nonce": "n", "ts": 1}}`:                           `missing required key "proof.signature"`,
		`{"agent_id": "` + id + `", "audience": []}`:                                             `key "audience" must be omitted when empty`,
		`{"agent_id": "` + id + `", "ttl_seconds": -1}`:                                          `key "ttl_seconds" must not be negative`,
		`{"agent_id": "` + id + `", "ttl": 60}`:                                                  `unknown key "ttl"`,
		`{"agent_id": "` + id + `", "proof": {"nonce": "n", "ts": 1, "signature": "s", "x": 1}}`: `unknown key "proof.x"`,
	} {
		got := c.gw("POST", "/api/v1/wimse/token", body).must(t, 400).errMsg()
		assert.Equal(t, msg, got, "%s: %q, want %q", body, got, msg)
	}
	c.gw("POST", "/api/v1/wimse/token", tokenBody(t, "nobody", nil, nil)).must(t, 404)
}

func TestWIMSETokenWithoutProofWhenNotRequired(t *testing.T) {
	srv := NewTestServer(t)
	c := newClient(t, srv)
	k := newTestKey(t, 3)
	keyed := srv.SeedAgent(AgentSeed{Name: "keyed", PublicKey: k.pem})
	legacy := srv.CreateAgent("legacy")

	r := c.gw("POST", "/api/v1/wimse/token", `{"agent_id": "`+keyed+`", "service_name": "", "environment": "", "ttl_seconds": 0}`).must(t, 200)
	_, claims := jwtClaims(t, r.str("token"), srv.WIMSESigningKey())
	cnf, _ := claims["cnf"].(map[string]any)
	require.Equal(t, JWKThumbprint(k.pub), cnf["jkt"], "keyed agent's token not bound to its key: %v", claims)
	require.Equal(t, DefaultWIMSETTL.Seconds(), claims["exp"].(float64)-claims["iat"].(float64), "ttl_seconds 0 should use the default lifetime: %v", claims)
	r = c.gw("POST", "/api/v1/wimse/token", tokenBody(t, legacy, nil, nil)).must(t, 200)
	_, claims = jwtClaims(t, r.str("token"), srv.WIMSESigningKey())
	require.Nil(t, claims["cnf"], "legacy agent's token has cnf: %v", claims)
	toks := srv.WIMSETokens()
	require.Len(t, toks, 2, "records %+v", toks)
	require.False(t, toks[0].WithProof, "records %+v", toks)
	require.Equal(t, "", toks[1].JKT, "records %+v", toks)
}

func TestWIMSEVerify(t *testing.T) {
	srv := NewTestServer(t)
	c := newClient(t, srv)
	k := newTestKey(t, 4)
	id := srv.SeedAgent(AgentSeed{Name: "bot", PublicKey: k.pem})
	tok := c.popToken(k, id)
	verify := func(token, filter string) resp {
		body := map[string]any{"token": token}
		if filter != "" {
			body["trust_domain_filter"] = filter
		}
		return c.gw("POST", "/api/v1/wimse/verify", jsonBody(t, body)).must(t, 200)
	}
	r := verify(tok, "agenttrust.id")
	require.Equal(t, true, r.json["valid"], "valid token: %s", r.raw)
	r = verify(tok, "other.example")
	require.Equal(t, false, r.json["valid"], "filter: %s", r.raw)
	require.Equal(t, "trust domain mismatch", r.str("reason"), "filter: %s", r.raw)

	// A token signed by another key with the same claims is a forgery.
	parts := strings.Split(tok, ".")
	forged := parts[0] + "." + parts[1] + "." + b64.EncodeToString(ed25519.Sign(k.priv, []byte(parts[0]+"."+parts[1])))
	// Flipping the claims breaks the fake's signature.
	claims, _ := b64.DecodeString(parts[1])
	altered := parts[0] + "." + b64.EncodeToString([]byte(strings.Replace(string(claims), id, "agent-x", 1))) + "." + parts[2]
	for name, bad := range map[string]string{"forged": forged, "altered": altered, "garbage": "not.a.jwt", "empty": ""} {
		r := verify(bad, "")
		assert.Equal(t, false, r.json["valid"], "%s: %s", name, r.raw)
		assert.NotEqual(t, "", r.str("reason"), "%s: %s", name, r.raw)
		assert.Nil(t, r.json["agent_id"], "%s: %s", name, r.raw)
	}

	srv.Advance(DefaultWIMSETTL)
	r = verify(tok, "")
	require.Equal(t, false, r.json["valid"], "expired: %s", r.raw)
	require.Equal(t, "token expired", r.str("reason"), "expired: %s", r.raw)
	srv.SetClock(nil)
	tok2 := c.popToken(k, id)
	require.True(t, srv.RevokeWIMSEToken(tok2), "RevokeWIMSEToken result")
	require.False(t, srv.RevokeWIMSEToken("nope"), "RevokeWIMSEToken result")
	r = verify(tok2, "")
	require.Equal(t, false, r.json["valid"], "revoked: %s", r.raw)
	require.Equal(t, "token revoked", r.str("reason"), "revoked: %s", r.raw)
	tok3 := c.popToken(k, id)
	c.gw("POST", "/api/v1/agents/"+id+"/revoke", `{"reason": "x"}`).must(t, 200)
	r = verify(tok3, "")
	require.Equal(t, false, r.json["valid"], "agent revoked: %s", r.raw)
	require.Equal(t, "agent revoked", r.str("reason"), "agent revoked: %s", r.raw)
	c.gw("POST", "/api/v1/wimse/verify", `{"token": "x", "trust_domain_filter": ""}`).must(t, 400)
}

func TestSenderConstrainedCheck(t *testing.T) {
	srv := NewTestServer(t)
	c := newClient(t, srv)
	k := newTestKey(t, 5)
	other := newTestKey(t, 6)
	id := srv.SeedAgent(AgentSeed{Name: "bot", PublicKey: k.pem})
	id2 := srv.SeedAgent(AgentSeed{Name: "bot2", PublicKey: other.pem})
	legacy := srv.CreateAgent("legacy")
	tok := c.popToken(k, id)
	srv.SetSecuritySettings(SecuritySettings{RequireSenderConstrainedTokens: true})
	checkURL := srv.AuthURL() + "/api/v1/agenttrust/check"
	now := func() int64 { return srv.Now().Unix() }

	// Happy path.
	good := newDPoP(k, "POST", checkURL, tok, now()).mint()
	r := c.checkWith(checkURL, id, tok, good).must(t, 200)
	require.Equal(t, true, r.json["allowed"], "check %s", r.raw)
	proofs := srv.DPoPProofs()
	require.Len(t, proofs, 1, "proof records %+v", proofs)
	require.True(t, proofs[0].Accepted, "proof records %+v", proofs)
	require.Equal(t, good, proofs[0].Proof, "proof records %+v", proofs)
	require.Equal(t, checkURL, proofs[0].URL, "proof records %+v", proofs)
	require.Equal(t, JWKThumbprint(k.pub), proofs[0].JKT, "proof records %+v", proofs)
	require.Equal(t, id, proofs[0].AgentID, "proof records %+v", proofs)
	require.Len(t, proofs[0].JTI, 32, "proof records %+v", proofs)

	revoked := c.popToken(k, id)
	srv.RevokeWIMSEToken(revoked)
	tok2 := c.popToken(other, id2)
	legacyTok := c.gw("POST", "/api/v1/wimse/token", tokenBody(t, legacy, nil, nil)).must(t, 200).str("token")
	parts := strings.Split(tok, ".")
	forgedTok := parts[0] + "." + parts[1] + "." + b64.EncodeToString(ed25519.Sign(k.priv, []byte(parts[0]+"."+parts[1])))

	type tc struct {
		name          string
		agent, token  string
		proof         func() string
		reason        RejectionReason
		recordedProof bool
	}
	mint := func(edit func(d *dpop)) func() string {
		return func() string {
			d := newDPoP(k, "POST", checkURL, tok, now())
			edit(d)
			return d.mint()
		}
	}
	cases := []tc{
		{"no credentials", id, "", func() string { return "" }, ReasonMissingToken, false},
		{"token without proof", id, tok, func() string { return "" }, ReasonMissingDPoP, false},
		{"replayed jti", id, tok, func() string { return good }, ReasonJTIReplayed, true},
		{"replayed jti in a new proof", id, tok, mint(func(d *dpop) { d.jti = proofs[0].JTI }), ReasonJTIReplayed, true},
		{"wrong htm", id, tok, mint(func(d *dpop) { d.htm = "GET" }), ReasonHTMMismatch, true},
		{"lower-case htm", id, tok, mint(func(d *dpop) { d.htm = "post" }), ReasonHTMMismatch, true},
		{"htu with query", id, tok, mint(func(d *dpop) { d.htu = checkURL + "?a=1" }), ReasonHTUMismatch, true},
		{"htu of another host", id, tok, mint(func(d *dpop) { d.htu = strings.Replace(checkURL, "127.0.0.1", "localhost", 1) }), ReasonHTUMismatch, true},
		{"htu of another path", id, tok, mint(func(d *dpop) { d.htu = srv.AuthURL() + "/api/v1/actions/check" }), ReasonHTUMismatch, true},
		{"old iat", id, tok, mint(func(d *dpop) { d.iat = now() - int64(ProofWindow.Seconds()) - 1 }), ReasonIATOutOfWindow, true},
		{"future iat", id, tok, mint(func(d *dpop) { d.iat = now() + int64(ProofWindow.Seconds()) + 1 }), ReasonIATOutOfWindow, true},
		{"wrong ath", id, tok, mint(func(d *dpop) { s := b64.EncodeToString(make([]byte, 32)); d.ath = &s }), ReasonATHMismatch, true},
		{"ath of another token", id, tok, mint(func(d *dpop) { sum := sha256.Sum256([]byte(revoked)); s := b64.EncodeToString(sum[:]); d.ath = &s }), ReasonATHMismatch, true},
		{"no ath", id, tok, mint(func(d *dpop) { d.ath = nil }), ReasonATHMismatch, true},
		{"thumbprint mismatch", id, tok, mint(func(d *dpop) { d.jwkKey, d.signer = other.pub, other.priv }), ReasonJKTMismatch, true},
		{"signed by another key", id, tok, mint(func(d *dpop) { d.signer = other.priv }), ReasonBadSignature, true},
		{"wrong typ", id, tok, mint(func(d *dpop) { d.typ = "JWT" }), ReasonBadDPoPHeader, true},
		{"wrong alg", id, tok, mint(func(d *dpop) { d.alg = "ES256" }), ReasonBadDPoPHeader, true},
		{"jti not 32 hex", id, tok, mint(func(d *dpop) { d.jti = "abc" }), ReasonMalformedDPoP, true},
		{"not a JWS", id, tok, func() string { return "a.b" }, ReasonMalformedDPoP, true},
		{"altered payload", id, tok, func() string {
			p := strings.Split(newDPoP(k, "POST", checkURL, tok, now()).mint(), ".")
			pay, _ := b64.DecodeString(p[1])
			p[1] = b64.EncodeToString([]byte(strings.Replace(string(pay), `"iat":`, `"iat":1`, 1)))
			return strings.Join(p, ".")
		}, ReasonBadSignature, true},
		{"revoked token", id, revoked, func() string { return newDPoP(k, "POST", checkURL, revoked, now()).mint() }, ReasonTokenRevoked, true},
		{"forged token", id, forgedTok, func() string { return newDPoP(k, "POST", checkURL, forgedTok, now()).mint() }, ReasonTokenInvalid, true},
		{"token of another agent", id, tok2, func() string { return newDPoP(other, "POST", checkURL, tok2, now()).mint() }, ReasonAgentMismatch, true},
		{"unbound token", legacy, legacyTok, func() string { return newDPoP(k, "POST", checkURL, legacyTok, now()).mint() }, ReasonTokenUnbound, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			nChecks, nProofs := len(srv.Checks()), len(srv.DPoPProofs())
			proof := tc.proof()
			r := c.checkWith(checkURL, tc.agent, tc.token, proof).must(t, 401)
			rej := lastRejection(t, srv)
			require.Equal(t, tc.reason, rej.Reason, "rejection %+v, want %s; reply %s", rej, tc.reason, r.raw)
			require.Equal(t, "POST /api/v1/agenttrust/check", rej.Endpoint, "rejection %+v, want %s; reply %s", rej, tc.reason, r.raw)
			require.Equal(t, tc.agent, rej.AgentID, "rejection %+v, want %s; reply %s", rej, tc.reason, r.raw)
			require.Equal(t, r.errMsg(), rej.Message, "rejection %+v, want %s; reply %s", rej, tc.reason, r.raw)
			require.Len(t, srv.Checks(), nChecks, "a refused check was recorded as accepted")
			ps := srv.DPoPProofs()
			if !tc.recordedProof {
				require.Len(t, ps, nProofs, "proof recorded without a DPoP header")
				return
			}
			require.Len(t, ps, nProofs+1, "proof records %+v", ps[nProofs:])
			require.False(t, ps[len(ps)-1].Accepted, "proof records %+v", ps[nProofs:])
			require.Equal(t, tc.reason, ps[len(ps)-1].Reason, "proof records %+v", ps[nProofs:])
			require.Equal(t, proof, ps[len(ps)-1].Proof, "proof records %+v", ps[nProofs:])
			if tc.token != "" {
				require.NotContains(t, r.errMsg(), tc.token[:min(len(tc.token), 20)], "error echoes the token")
			}
		})
	}

	// Two DPoP headers are refused.
	hdr := http.Header{}
	hdr.Add("DPoP", newDPoP(k, "POST", checkURL, tok, now()).mint())
	hdr.Add("DPoP", newDPoP(k, "POST", checkURL, tok, now()).mint())
	req, _ := http.NewRequest("POST", checkURL, strings.NewReader(checkBody(id, "", "read_file")))
	req.Header = hdr
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-Key", srv.APIKey())
	req.Header.Set("Authorization", "Bearer "+tok)
	res, err := c.hc.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	require.EqualValues(t, 401, res.StatusCode, "two DPoP headers: %d %+v", res.StatusCode, lastRejection(t, srv))
	require.Equal(t, ReasonMissingDPoP, lastRejection(t, srv).Reason, "two DPoP headers: %d %+v", res.StatusCode, lastRejection(t, srv))

	// An expired token is refused once the fake's clock passes exp; a
	// proof minted on the moved clock is fine otherwise.
	srv.Advance(DefaultWIMSETTL)
	c.checkWith(checkURL, id, tok, newDPoP(k, "POST", checkURL, tok, now()).mint()).must(t, 401)
	rej := lastRejection(t, srv)
	require.Equal(t, ReasonTokenExpired, rej.Reason, "expired token: %+v", rej)
	fresh := c.popToken(k, id)
	c.checkWith(checkURL, id, fresh, newDPoP(k, "POST", checkURL, fresh, now()).mint()).must(t, 200)
	n := len(srv.Checks())
	require.EqualValues(t, 2, n, "%d accepted checks, want 2", n)
}

func TestCredentialsCheckedWhenSentButNotRequired(t *testing.T) {
	srv := NewTestServer(t)
	c := newClient(t, srv)
	k := newTestKey(t, 8)
	id := srv.SeedAgent(AgentSeed{Name: "bot", PublicKey: k.pem})
	tok := c.popToken(k, id)
	checkURL := srv.AuthURL() + "/api/v1/agenttrust/check"

	c.checkWith(checkURL, id, "", "").must(t, 200) // plain check, nothing required
	proof := newDPoP(k, "POST", checkURL, tok, srv.Now().Unix()).mint()
	c.checkWith(checkURL, id, tok, proof).must(t, 200)
	c.checkWith(checkURL, id, tok, proof).must(t, 401)
	r := lastRejection(t, srv)
	require.Equal(t, ReasonJTIReplayed, r.Reason, "replay: %+v", r)
	c.checkWith(checkURL, id, "", proof).must(t, 401)
	r = lastRejection(t, srv)
	require.Equal(t, ReasonMissingToken, r.Reason, "DPoP without token: %+v", r)
}

func TestSenderConstrainedCheckSplitListeners(t *testing.T) {
	srv := NewTestServer(t, WithSplitListeners())
	srv.SetSecuritySettings(SecuritySettings{RequireProofOfPossession: true, RequireSenderConstrainedTokens: true})
	c := newClient(t, srv)
	k := newTestKey(t, 9)
	id := srv.SeedAgent(AgentSeed{Name: "bot", PublicKey: k.pem})
	tok := c.popToken(k, id)
	checkURL := srv.AuthURL() + "/api/v1/agenttrust/check"

	// Signing the gateway URL (as the Python SDK does) fails with split services.
	gwProof := newDPoP(k, "POST", srv.URL()+"/api/v1/agenttrust/check", tok, srv.Now().Unix()).mint()
	c.checkWith(checkURL, id, tok, gwProof).must(t, 401)
	r := lastRejection(t, srv)
	require.Equal(t, ReasonHTUMismatch, r.Reason, "gateway htu: %+v", r)
	c.checkWith(checkURL, id, tok, newDPoP(k, "POST", checkURL, tok, srv.Now().Unix()).mint()).must(t, 200)
}

func TestIdentityConcurrentChecks(t *testing.T) {
	srv := NewTestServer(t)
	srv.SetSecuritySettings(SecuritySettings{RequireProofOfPossession: true, RequireSenderConstrainedTokens: true})
	c := newClient(t, srv)
	k := newTestKey(t, 10)
	id := srv.SeedAgent(AgentSeed{Name: "bot", PublicKey: k.pem})
	tok := c.popToken(k, id)
	checkURL := srv.AuthURL() + "/api/v1/agenttrust/check"
	replayed := newDPoP(k, "POST", checkURL, tok, srv.Now().Unix()).mint()

	const n = 16
	statuses := make(chan int, 2*n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			statuses <- c.checkWith(checkURL, id, tok, newDPoP(k, "POST", checkURL, tok, srv.Now().Unix()).mint()).status
		}()
		go func() {
			defer wg.Done()
			statuses <- c.checkWith(checkURL, id, tok, replayed).status
		}()
	}
	wg.Wait()
	close(statuses)
	count := map[int]int{}
	for s := range statuses {
		count[s]++
	}
	// Every fresh proof passes; the shared proof passes exactly once.
	require.Equal(t, n+1, count[200], "statuses %v", count)
	require.Equal(t, n-1, count[401], "statuses %v", count)
}

func TestCredentialsOnlyOnTheCheck(t *testing.T) {
	srv := NewTestServer(t)
	c := newClient(t, srv)
	k := newTestKey(t, 11)
	id := srv.SeedAgent(AgentSeed{Name: "bot", PublicKey: k.pem})
	tok := c.popToken(k, id)
	proof := newDPoP(k, "GET", srv.URL()+"/api/v1/agents/"+id, tok, srv.Now().Unix()).mint()

	r := c.doHeaders("GET", srv.URL()+"/api/v1/agents/"+id, "", map[string]string{"DPoP": proof})
	require.Equal(t, "a DPoP header is only accepted on POST /api/v1/agenttrust/check", r.must(t, 400).errMsg(), "DPoP on get agent: %s", r.raw)
	r = c.doHeaders("GET", srv.URL()+"/api/v1/agents/"+id, "", map[string]string{"Authorization": "Bearer " + tok})
	require.Equal(t, "a WIMSE bearer token is only accepted on POST /api/v1/agenttrust/check", r.must(t, 400).errMsg(), "WIMSE token on get agent: %s", r.raw)
	// Other bearer values are none of the fake's business.
	c.doHeaders("GET", srv.URL()+"/api/v1/agents/"+id, "", map[string]string{"Authorization": "Bearer something-else"}).must(t, 200)
}
