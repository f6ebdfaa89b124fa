package agenttrust

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math"
	"net/http"
	"strconv"
	"strings"
)

// ATITrustExtensionURI identifies the AgentTrust trust extension in an agent
// card's capabilities.extensions; its params carry ati_trust_score and
// ati_agent_key.
const ATITrustExtensionURI = "https://agenttrust.id/ext/trust/v1"

// AgentCardsService generates, reads and publishes A2A agent cards (gateway).
type AgentCardsService service

// Generate builds the agent's card: a bodiless POST /api/v1/agents/{agent_id}/card.
func (s *AgentCardsService) Generate(ctx context.Context, agentID string, opts ...RequestOption) (*AgentCard, error) {
	return callAt[AgentCard](ctx, s.client, http.MethodPost, "/api/v1/agents/{agent_id}/card", agentID, "", opts)
}

// Get reads the agent's card: GET /api/v1/agents/{agent_id}/card.
func (s *AgentCardsService) Get(ctx context.Context, agentID string, opts ...RequestOption) (*AgentCard, error) {
	return callAt[AgentCard](ctx, s.client, http.MethodGet, "/api/v1/agents/{agent_id}/card", agentID, "", opts)
}

// Publish makes the agent's card public: a bodiless
// PUT /api/v1/agents/{agent_id}/card/publish.
func (s *AgentCardsService) Publish(ctx context.Context, agentID string, opts ...RequestOption) (*AgentCard, error) {
	return callAt[AgentCard](ctx, s.client, http.MethodPut, "/api/v1/agents/{agent_id}/card/publish", agentID, "", opts)
}

// GetPublic reads the public A2A discovery document:
// GET /a2a/agents/{agent_id}/agent.json. The gateway needs no authentication
// for it; the API key is still sent when configured. The card's signatures
// are not verified.
func (s *AgentCardsService) GetPublic(ctx context.Context, agentID string, opts ...RequestOption) (*AgentCard, error) {
	return callAt[AgentCard](ctx, s.client, http.MethodGet, "/a2a/agents/{agent_id}/agent.json", agentID, "", opts)
}

// AgentCard is an A2A v1.0 agent card. Keys are camelCase on
// the wire; nested structures are kept as raw JSON. Every field is optional.
type AgentCard struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Version     string `json:"version"`
	// SupportedInterfaces are {url, protocolBinding, protocolVersion, tenant}
	// objects; see PrimaryURL.
	SupportedInterfaces []json.RawMessage `json:"supportedInterfaces"`
	// Provider is {organization, url}; nil when absent.
	Provider json.RawMessage `json:"provider"`
	// Capabilities is {streaming, pushNotifications, extensions}; {} when
	// absent. See TrustScore and AgentPublicKeyPEM.
	Capabilities         json.RawMessage   `json:"capabilities"`
	SecuritySchemes      json.RawMessage   `json:"securitySchemes"`
	SecurityRequirements []json.RawMessage `json:"securityRequirements"`
	DefaultInputModes    []string          `json:"defaultInputModes"`
	DefaultOutputModes   []string          `json:"defaultOutputModes"`
	Skills               []json.RawMessage `json:"skills"`
	// Signatures are JWS signatures over the card; the SDK does not verify
	// them.
	Signatures       []json.RawMessage `json:"signatures"`
	DocumentationURL string            `json:"documentationUrl"`
	IconURL          string            `json:"iconUrl"`
	// LegacyURL is the pre-v1.0 top-level "url".
	LegacyURL string `json:"url"`
}

// UnmarshalJSON treats null raw members as absent and gives an
// absent capabilities member the empty object.
func (c *AgentCard) UnmarshalJSON(b []byte) error {
	type plain AgentCard
	*c = AgentCard{}
	if err := json.Unmarshal(b, (*plain)(c)); err != nil {
		return err
	}
	c.Provider = rawOrNil(c.Provider)
	c.SecuritySchemes = rawOrNil(c.SecuritySchemes)
	if c.Capabilities = rawOrNil(c.Capabilities); c.Capabilities == nil {
		c.Capabilities = json.RawMessage("{}")
	}
	return nil
}

// rawOrNil returns nil for an absent or null raw value.
func rawOrNil(r json.RawMessage) json.RawMessage {
	if isEmptyJSON(r) {
		return nil
	}
	return r
}

// PrimaryURL is the url of the first supported interface when that is an
// object with a non-empty string url, else LegacyURL. Only the first
// interface is examined.
func (c *AgentCard) PrimaryURL() string {
	if len(c.SupportedInterfaces) > 0 {
		var first struct {
			URL json.RawMessage `json:"url"`
		}
		var u string
		if json.Unmarshal(c.SupportedInterfaces[0], &first) == nil &&
			json.Unmarshal(first.URL, &u) == nil && u != "" {
			return u
		}
	}
	return c.LegacyURL
}

// trustParams returns the params of the first capabilities.extensions entry
// whose uri is ATITrustExtensionURI. Non-object entries are skipped; ok is
// false when there is no such entry. Numbers are kept as json.Number.
func (c *AgentCard) trustParams() (params map[string]any, ok bool) {
	var caps map[string]any
	if !decodeUseNumber(c.Capabilities, &caps) {
		return nil, false
	}
	exts, _ := caps["extensions"].([]any)
	for _, e := range exts {
		ext, isObj := e.(map[string]any)
		if !isObj {
			continue
		}
		if uri, _ := ext["uri"].(string); uri == ATITrustExtensionURI {
			p, _ := ext["params"].(map[string]any)
			return p, true
		}
	}
	return nil, false
}

func decodeUseNumber(b []byte, out any) bool {
	if len(b) == 0 {
		return false
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	return d.Decode(out) == nil
}

// TrustScore is params.ati_trust_score of the trust extension: a JSON number
// or a string holding a finite decimal number (surrounding white space
// ignored). Anything else, booleans included, gives 0; so does a card
// without the extension. It never fails.
func (c *AgentCard) TrustScore() float64 {
	p, ok := c.trustParams()
	if !ok {
		return 0
	}
	var s string
	switch v := p["ati_trust_score"].(type) {
	case json.Number:
		s = v.String()
	case string:
		s = strings.TrimSpace(v)
		if !isDecimal(s) {
			return 0
		}
	default:
		return 0
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0
	}
	return f
}

// isDecimal reports whether s looks like a decimal number: an optional sign,
// digits with at most one point, and an optional exponent. It rules out the
// hexadecimal, underscore, infinity and NaN forms ParseFloat also accepts.
func isDecimal(s string) bool {
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	j := skipDigits(s, i)
	digits := j - i
	i = j
	if i < len(s) && s[i] == '.' {
		j = skipDigits(s, i+1)
		digits += j - i - 1
		i = j
	}
	if digits == 0 {
		return false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if j = skipDigits(s, i); j == i {
			return false
		}
		i = j
	}
	return i == len(s)
}

func skipDigits(s string, i int) int {
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return i
}

// AgentPublicKeyPEM returns the agent's Ed25519 public key from the trust
// extension's params.ati_agent_key, as a PKIX "PUBLIC KEY" PEM. Only the
// first trust extension is examined; the key must have kty "OKP", crv
// "Ed25519" and an x of strict base64url (no padding; trailing "=" are
// ignored) decoding to exactly 32 bytes. Anything else returns "", false.
//
// The card's signatures are not verified, so the key is only as trustworthy
// as the channel the card came from.
func (c *AgentCard) AgentPublicKeyPEM() (string, bool) {
	p, ok := c.trustParams()
	if !ok {
		return "", false
	}
	jwk, _ := p["ati_agent_key"].(map[string]any)
	if kty, _ := jwk["kty"].(string); kty != "OKP" {
		return "", false
	}
	if crv, _ := jwk["crv"].(string); crv != "Ed25519" {
		return "", false
	}
	x, _ := jwk["x"].(string)
	x = strings.TrimRight(x, "=")
	if x == "" || !isBase64URL(x) {
		return "", false
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(x)
	if err != nil || len(raw) != ed25519.PublicKeySize {
		return "", false
	}
	der, err := x509.MarshalPKIXPublicKey(ed25519.PublicKey(raw))
	if err != nil {
		return "", false
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), true
}

// isBase64URL reports whether s uses only the URL-safe base64 alphabet
// (the decoder itself would skip line breaks).
func isBase64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		switch ch := s[i]; {
		case ch >= 'A' && ch <= 'Z', ch >= 'a' && ch <= 'z', ch >= '0' && ch <= '9', ch == '-', ch == '_':
		default:
			return false
		}
	}
	return true
}
