package agenttrusttest

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
)

// TrustExtensionURI is the URI of the AgentTrust trust extension on agent cards.
const TrustExtensionURI = "https://agenttrust.id/ext/trust/v1"

// cardKeyID names the fake's card-signing key in card signatures.
const cardKeyID = "agenttrusttest-card-key"

type cardState struct {
	published bool
}

// trustScore is metadata["trust_score"] when it is a number, 0 for a
// revoked agent and 0.9 otherwise.
func trustScore(ag *agent) float64 {
	switch v := ag.Metadata["trust_score"].(type) {
	case float64:
		return v
	case int:
		return float64(v)
	}
	if !ag.active() {
		return 0
	}
	return 0.9
}

// agentKeyJWK returns the agent's Ed25519 public key as an OKP JWK, or nil.
func agentKeyJWK(pemText string) map[string]any {
	block, _ := pem.Decode([]byte(pemText))
	if block == nil {
		return nil
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil
	}
	key, ok := pub.(ed25519.PublicKey)
	if !ok {
		return nil
	}
	return map[string]any{"kty": "OKP", "crv": "Ed25519", "x": base64.RawURLEncoding.EncodeToString(key)}
}

// buildCard renders the A2A v1.0 card for ag. Published
// cards carry a detached Ed25519 signature by the fake's own key.
func (s *Server) buildCard(ag *agent, published bool) map[string]any {
	params := map[string]any{"ati_trust_score": trustScore(ag)}
	if jwk := agentKeyJWK(ag.PublicKey); jwk != nil {
		params["ati_agent_key"] = jwk
	}
	modes := []string{"text/plain"}
	skills := []any{}
	for _, capName := range ag.Capabilities {
		skills = append(skills, map[string]any{
			"id": capName, "name": capName, "description": "Capability " + capName,
			"tags": []string{capName}, "examples": []string{}, "inputModes": modes, "outputModes": modes,
		})
	}
	card := map[string]any{
		"name":        ag.Name,
		"description": "AgentTrust agent " + ag.Name,
		"version":     "1.0.0",
		"supportedInterfaces": []any{map[string]any{
			"url": s.gwURL + "/a2a/agents/" + ag.ID, "protocolBinding": "jsonrpc",
			"protocolVersion": "1.0", "tenant": ag.OrgID,
		}},
		"provider": map[string]any{"organization": "ATI", "url": s.gwURL},
		"capabilities": map[string]any{
			"streaming": false, "pushNotifications": false,
			"extensions": []any{map[string]any{
				"uri": TrustExtensionURI, "description": "AgentTrust trust signals",
				"required": false, "params": params,
			}},
		},
		"securitySchemes":      map[string]any{"bearer": map[string]any{"type": "http", "scheme": "bearer"}},
		"securityRequirements": []any{map[string]any{"bearer": []string{}}},
		"defaultInputModes":    modes,
		"defaultOutputModes":   modes,
		"skills":               skills,
	}
	if published {
		payload, _ := json.Marshal(card)
		protected, _, sig := s.signJWS(`{"alg":"EdDSA","kid":"`+cardKeyID+`"}`, payload)
		card["signatures"] = []any{map[string]any{
			"protected": protected, "signature": sig,
			"header": map[string]any{"kid": cardKeyID},
		}}
	}
	return card
}

// cardOp looks up the agent of the path, applies op to its card state under
// the lock and answers with the card, or with 404.
func (s *Server) cardOp(c *call, op func(cs *cardState, exists bool) (ok bool, msg string)) {
	id := c.param("agent_id")
	s.mu.Lock()
	ag, found := s.st.agents.get(id)
	if !found {
		s.mu.Unlock()
		c.fail(http.StatusNotFound, "agent not found")
		return
	}
	cs, exists := s.st.cards[id]
	if !exists {
		cs = &cardState{}
	}
	ok, msg := op(cs, exists)
	if ok && !exists {
		s.st.cards[id] = cs
	}
	snapshot, published := *ag, cs.published
	s.mu.Unlock()
	if !ok {
		c.fail(http.StatusNotFound, msg)
		return
	}
	c.reply(http.StatusOK, s.buildCard(&snapshot, published))
}

func (s *Server) generateCard(c *call) {
	s.cardOp(c, func(*cardState, bool) (bool, string) { return true, "" })
}

func (s *Server) getCard(c *call) {
	s.cardOp(c, func(_ *cardState, exists bool) (bool, string) { return exists, "agent card not generated" })
}

// publishCard publishes the card, generating it first when needed.
func (s *Server) publishCard(c *call) {
	s.cardOp(c, func(cs *cardState, _ bool) (bool, string) { cs.published = true; return true, "" })
}

// getPublicCard is the unauthenticated discovery document; only published
// cards are served.
func (s *Server) getPublicCard(c *call) {
	s.cardOp(c, func(cs *cardState, _ bool) (bool, string) { return cs.published, "agent card not published" })
}
