package agenttrust

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sampleCard is the A2A v1.0 card shape.
const sampleCard = `{
  "name": "billing-bot", "description": "Pays invoices", "version": "1.0.0",
  "supportedInterfaces": [{"url": "http://gw/a2a/agents/a1", "protocolBinding": "jsonrpc", "protocolVersion": "1.0", "tenant": "org-1"}],
  "provider": {"organization": "ATI", "url": "https://agenttrust.id"},
  "capabilities": {"streaming": false, "pushNotifications": false, "extensions": [
    {"uri": "https://agenttrust.id/ext/trust/v1", "description": "trust", "required": false,
     "params": {"ati_trust_score": 0.87, "ati_agent_key": {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}}}]},
  "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
  "securityRequirements": [{"bearer": []}],
  "defaultInputModes": ["text/plain"], "defaultOutputModes": ["text/plain", "application/json"],
  "skills": [{"id": "pay", "name": "Pay", "description": "d", "tags": [], "examples": [], "inputModes": [], "outputModes": []}],
  "signatures": [{"protected": "eyJ", "signature": "sig", "header": {"kid": "k1"}}],
  "documentationUrl": "https://docs", "iconUrl": "https://icon"
}`

func TestAgentCardsWire(t *testing.T) {
	ctx := context.Background()
	srv := newScriptServer(t, scriptReply{body: sampleCard})
	c := srv.client(t)
	calls := []struct {
		name, method, uri string
		call              func(string) (*AgentCard, error)
	}{
		{"Generate", http.MethodPost, "/api/v1/agents/a1/card", func(id string) (*AgentCard, error) { return c.AgentCards.Generate(ctx, id) }},
		{"Get", http.MethodGet, "/api/v1/agents/a1/card", func(id string) (*AgentCard, error) { return c.AgentCards.Get(ctx, id) }},
		{"Publish", http.MethodPut, "/api/v1/agents/a1/card/publish", func(id string) (*AgentCard, error) { return c.AgentCards.Publish(ctx, id) }},
		{"GetPublic", http.MethodGet, "/a2a/agents/a1/agent.json", func(id string) (*AgentCard, error) { return c.AgentCards.GetPublic(ctx, id) }},
	}
	for _, tc := range calls {
		t.Run(tc.name, func(t *testing.T) {
			srv.reset(scriptReply{body: sampleCard})
			card, err := tc.call("a1")
			require.NoError(t, err)
			r := srv.only(t)
			checkRequest(t, r, tc.method, tc.uri)
			if tc.method != http.MethodGet {
				checkBodiless(t, r, tc.method)
			}
			assert.Equal(t, "billing-bot", card.Name, "card = %+v", card)
			assert.Equal(t, "1.0.0", card.Version, "card = %+v", card)
			assert.Equal(t, "https://docs", card.DocumentationURL, "card = %+v", card)
			assert.Equal(t, "https://icon", card.IconURL, "card = %+v", card)
			assert.Equal(t, "http://gw/a2a/agents/a1", card.PrimaryURL(), "PrimaryURL = %q", card.PrimaryURL())
			assert.Equal(t, 0.87, card.TrustScore(), "TrustScore = %v", card.TrustScore())
			_, ok := card.AgentPublicKeyPEM()
			assert.True(t, ok, "no agent key")
			assert.Len(t, card.Skills, 1, "raw members lost: %+v", card)
			assert.Len(t, card.Signatures, 1, "raw members lost: %+v", card)
			assert.Len(t, card.SecurityRequirements, 1, "raw members lost: %+v", card)
			assert.Len(t, card.DefaultOutputModes, 2, "raw members lost: %+v", card)
			assert.NotEmpty(t, string(card.SecuritySchemes), "raw members lost: %+v", card)
			assert.NotEmpty(t, string(card.Provider), "raw members lost: %+v", card)
		})
	}
}

func TestAgentCardDecoding(t *testing.T) {
	ctx := context.Background()
	for _, body := range []string{"", "null", "{}", `{"provider": null, "capabilities": null, "securitySchemes": null}`} {
		srv := newScriptServer(t, scriptReply{body: body})
		card, err := srv.client(t).AgentCards.Get(ctx, "a1")
		require.NoError(t, err, "%q", body)
		assert.Equal(t, "{}", string(card.Capabilities), "%q: card = %+v", body, card)
		assert.Nil(t, card.Provider, "%q: card = %+v", body, card)
		assert.Nil(t, card.SecuritySchemes, "%q: card = %+v", body, card)
		assert.Empty(t, card.PrimaryURL(), "%q: card = %+v", body, card)
		assert.Equal(t, 0.0, card.TrustScore(), "%q: card = %+v", body, card)
	}
	for _, body := range []string{"[]", `"card"`, "{", `{"name": 5}`, `{"skills": {}}`} {
		srv := newScriptServer(t, scriptReply{body: body})
		_, err := srv.client(t).AgentCards.Get(ctx, "a1")
		wantCode(t, err, CodeDecode)
	}
}

func cardWith(t *testing.T, js string) *AgentCard {
	t.Helper()
	var c AgentCard
	require.NoError(t, json.Unmarshal([]byte(js), &c), "%s", js)
	return &c
}

func TestAgentCardPrimaryURL(t *testing.T) {
	for _, tc := range []struct{ js, want string }{
		{`{"supportedInterfaces": [{"url": "u1"}, {"url": "u2"}], "url": "legacy"}`, "u1"},
		{`{"supportedInterfaces": [{"url": ""}, {"url": "u2"}], "url": "legacy"}`, "legacy"},
		{`{"supportedInterfaces": [{"url": 5}], "url": "legacy"}`, "legacy"},
		{`{"supportedInterfaces": ["u1"], "url": "legacy"}`, "legacy"},
		{`{"supportedInterfaces": [null, {"url": "u2"}]}`, ""},
		{`{"supportedInterfaces": [], "url": "legacy"}`, "legacy"},
		{`{}`, ""},
	} {
		got := cardWith(t, tc.js).PrimaryURL()
		assert.Equal(t, tc.want, got, "%s: PrimaryURL = %q, want %q", tc.js, got, tc.want)
	}
}

func trustCard(score string) string {
	return `{"capabilities": {"extensions": [{"uri": "` + ATITrustExtensionURI + `", "params": {"ati_trust_score": ` + score + `}}]}}`
}

func TestAgentCardTrustScore(t *testing.T) {
	for _, tc := range []struct {
		js   string
		want float64
	}{
		{trustCard("0.5"), 0.5},
		{trustCard("87"), 87},
		{trustCard("-1e2"), -100},
		{trustCard(`"0.75"`), 0.75},
		{trustCard(`"  0.25\n"`), 0.25},
		{trustCard(`".5"`), 0.5},
		{trustCard(`"1."`), 1},
		{trustCard(`"+2E1"`), 20},
		{trustCard("true"), 0},
		{trustCard("false"), 0},
		{trustCard("null"), 0},
		{trustCard(`"abc"`), 0},
		{trustCard(`""`), 0},
		{trustCard(`"inf"`), 0},
		{trustCard(`"NaN"`), 0},
		{trustCard(`"0x1p-2"`), 0},
		{trustCard(`"1_000"`), 0},
		{trustCard(`"1e400"`), 0},
		{trustCard("1e400"), 0},
		{trustCard(`[0.5]`), 0},
		{trustCard(`{"v": 0.5}`), 0},
		{`{"capabilities": {"extensions": ["x", 5, null, {"uri": "` + ATITrustExtensionURI + `", "params": {"ati_trust_score": 0.9}}]}}`, 0.9},
		{`{"capabilities": {"extensions": [{"uri": "` + ATITrustExtensionURI + `"}, {"uri": "` + ATITrustExtensionURI + `", "params": {"ati_trust_score": 0.9}}]}}`, 0},
		{`{"capabilities": {"extensions": [{"uri": "https://other", "params": {"ati_trust_score": 0.9}}]}}`, 0},
		{`{"capabilities": {"extensions": null}}`, 0},
		{`{"capabilities": {"extensions": {"uri": "` + ATITrustExtensionURI + `"}}}`, 0},
		{`{"capabilities": "yes"}`, 0},
		{`{"capabilities": [1]}`, 0},
	} {
		got := cardWith(t, tc.js).TrustScore()
		assert.Equal(t, tc.want, got, "%s: TrustScore = %v, want %v", tc.js, got, tc.want)
	}
}

func keyCard(key string) string {
	return `{"capabilities": {"extensions": [{"uri": "` + ATITrustExtensionURI + `", "params": {"ati_agent_key": ` + key + `}}]}}`
}

func TestAgentCardPublicKey(t *testing.T) {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	x := base64.RawURLEncoding.EncodeToString(pub)
	jwk := func(kty, crv, x string) string {
		return `{"kty": "` + kty + `", "crv": "` + crv + `", "x": "` + x + `"}`
	}

	pemText, ok := cardWith(t, keyCard(jwk("OKP", "Ed25519", x))).AgentPublicKeyPEM()
	require.True(t, ok, "valid key rejected")
	assert.True(t, strings.HasPrefix(pemText, "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA"), "PEM form:\n%s", pemText)
	assert.True(t, strings.HasSuffix(pemText, "-----END PUBLIC KEY-----\n"), "PEM form:\n%s", pemText)
	assert.NotContains(t, pemText, "\r", "PEM form:\n%s", pemText)
	block, rest := pem.Decode([]byte(pemText))
	require.NotNil(t, block, "not one PEM block: %q", pemText)
	require.Empty(t, rest, "not one PEM block: %q", pemText)
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	require.NoError(t, err, "PEM holds %v (%v), want the card's key", k, err)
	require.True(t, pub.Equal(k), "PEM holds %v (%v), want the card's key", k, err)
	_, ok = cardWith(t, keyCard(jwk("OKP", "Ed25519", x+"="))).AgentPublicKeyPEM()
	assert.True(t, ok, "trailing padding should be ignored")

	// An x whose characters include the standard alphabet's + and /.
	stdX := ""
	for i := 0; i < 100 && !strings.ContainsAny(stdX, "+/"); i++ {
		p, _, _ := ed25519.GenerateKey(rand.Reader)
		stdX = base64.RawStdEncoding.EncodeToString(p)
	}
	bad := []string{
		jwk("RSA", "Ed25519", x),
		jwk("OKP", "X25519", x),
		jwk("okp", "Ed25519", x),
		jwk("OKP", "Ed25519", ""),
		jwk("OKP", "Ed25519", stdX),
		jwk("OKP", "Ed25519", x[:len(x)-1]),
		jwk("OKP", "Ed25519", x[:len(x)-2]),
		jwk("OKP", "Ed25519", x+"AA"),
		jwk("OKP", "Ed25519", x[:20]+`\n`+x[20:]),
		jwk("OKP", "Ed25519", x[:20]+" "+x[20:]),
		jwk("OKP", "Ed25519", x[:20]+"!"+x[20:]),
		jwk("OKP", "Ed25519", "===="),
		`{"kty": "OKP", "crv": "Ed25519", "x": 5}`,
		`{"kty": "OKP", "crv": "Ed25519"}`,
		`"` + x + `"`,
		`null`,
		`[1]`,
	}
	for _, key := range bad {
		got, ok := cardWith(t, keyCard(key)).AgentPublicKeyPEM()
		assert.False(t, ok, "key %s accepted: %q", key, got)
		assert.Empty(t, got, "key %s accepted: %q", key, got)
	}
	// Only the first trust extension counts, even when a later one has a key.
	twoExt := `{"capabilities": {"extensions": [{"uri": "` + ATITrustExtensionURI + `", "params": {}},
		{"uri": "` + ATITrustExtensionURI + `", "params": {"ati_agent_key": ` + jwk("OKP", "Ed25519", x) + `}}]}}`
	_, ok = cardWith(t, twoExt).AgentPublicKeyPEM()
	assert.False(t, ok, "a later trust extension was used")
	_, ok = cardWith(t, `{}`).AgentPublicKeyPEM()
	assert.False(t, ok, "a card without extensions has a key")
}

// FuzzDecodeAgentCard checks that no reply makes the card decoder or its
// accessors panic, and that a key it reports is a parsable PEM key. `go test`
// runs the seed corpus in testdata/fuzz/FuzzDecodeAgentCard.
func FuzzDecodeAgentCard(f *testing.F) {
	f.Add([]byte(`{"name": "n", "capabilities": {"extensions": [{"uri": "https://agenttrust.id/ext/trust/v1", "params": {"ati_trust_score": "0.5"}}]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		card := new(AgentCard)
		if err := decodeObject(&response{status: 200, body: data}, card); err != nil {
			var de *DecodeError
			require.ErrorAs(t, err, &de, "error %v (%T) is not a *DecodeError", err, err)
			return
		}
		require.NotNil(t, card.Capabilities, "nil capabilities")
		_ = card.PrimaryURL()
		_ = card.TrustScore()
		if p, ok := card.AgentPublicKeyPEM(); ok {
			block, _ := pem.Decode([]byte(p))
			require.NotNil(t, block, "bad PEM %q", p)
			_, err := x509.ParsePKIXPublicKey(block.Bytes)
			require.NoError(t, err, "PEM key does not parse")
		} else {
			require.Empty(t, p, "no key but %q", p)
		}
	})
}
