package agenttrust

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
)

// AgentsService registers, reads, lists and revokes agents (gateway).
type AgentsService service

// AgentCreateParams are the arguments of Agents.Create.
type AgentCreateParams struct {
	// Name is required by the gateway.
	Name string
	// Framework is a hint such as FrameworkLangChain; "" sends "custom".
	Framework Framework
	// OrgID is sent when non-empty.
	OrgID string
	// Capabilities are the scopes the agent may later ask tokens for; nil
	// sends [].
	Capabilities []string
	// Metadata is passed through; nil sends {}.
	Metadata map[string]any
	// PublicKey is the agent's Ed25519 public key as a PKIX "PUBLIC KEY"
	// PEM, sent as given. It is validated before any I/O: anything else is
	// a *ValidationError. Empty means the SDK generates a fresh key pair
	// locally and sends its public key; the private key is never sent and
	// is returned in Agent.PrivateKey (and stored in KeyStore when set).
	PublicKey string
	// KeyStore, when set, receives the private key the SDK generated,
	// under the new agent's ID. It requires an empty PublicKey: a key the
	// caller supplied has no private half here to store.
	KeyStore KeyStore
}

type agentCreateBody struct {
	Name         string         `json:"name"`
	Framework    Framework      `json:"framework"`
	Capabilities []string       `json:"capabilities"`
	Metadata     map[string]any `json:"metadata"`
	PublicKey    string         `json:"public_key"`
	OrgID        string         `json:"org_id,omitempty"`
}

// Create registers an agent: POST /api/v1/agents.
//
// Every agent gets an Ed25519 identity. With an empty p.PublicKey a fresh
// key pair is generated locally: the public key is sent, Agent.PublicKey
// holds it (unless the gateway echoes one) and Agent.PrivateKey holds the
// private key, which never leaves the process. The SDK does not persist it:
// set p.KeyStore to have it stored under the new agent's ID. If storing
// fails, Create returns both the agent (with its private key, so that it is
// not lost) and the error.
func (s *AgentsService) Create(ctx context.Context, p AgentCreateParams, opts ...RequestOption) (*Agent, error) {
	if p.KeyStore != nil && missingKeyStore(p.KeyStore) {
		return nil, errNilKeyStore()
	}
	var generated AgentKeyPair
	if p.PublicKey != "" {
		if _, err := ParsePublicKeyPEM(p.PublicKey); err != nil {
			return nil, err
		}
		if p.KeyStore != nil {
			return nil, validationErr("KeyStore is set with a PublicKey: only a key pair the SDK generates can be stored")
		}
	} else {
		var err error
		if generated, err = GenerateAgentKey(); err != nil {
			return nil, err
		}
	}
	body := agentCreateBody{
		Name:         p.Name,
		Framework:    Framework(orDefault(string(p.Framework), string(FrameworkCustom))),
		Capabilities: nonNil(p.Capabilities),
		Metadata:     p.Metadata,
		PublicKey:    orDefault(p.PublicKey, generated.PublicKeyPEM),
		OrgID:        p.OrgID,
	}
	if body.Metadata == nil {
		body.Metadata = map[string]any{}
	}
	a, err := call[Agent](ctx, s.client, &request{method: http.MethodPost, path: "/api/v1/agents", body: body}, "agent", opts)
	if err != nil || generated.PrivateKeyPEM == "" {
		return a, err
	}
	a.PrivateKey = generated.PrivateKeyPEM
	if a.PublicKey == "" {
		a.PublicKey = generated.PublicKeyPEM
	}
	if p.KeyStore != nil {
		if err := p.KeyStore.Store(ctx, a.ID, generated.PrivateKeyPEM); err != nil {
			return a, keyStoreErr("agent "+strconv.Quote(a.ID)+" was created but its private key could not be stored (it is in Agent.PrivateKey)", err)
		}
	}
	return a, nil
}

// Get reads one agent: GET /api/v1/agents/{agent_id}.
func (s *AgentsService) Get(ctx context.Context, agentID string, opts ...RequestOption) (*Agent, error) {
	return callAt[Agent](ctx, s.client, http.MethodGet, "/api/v1/agents/{agent_id}", agentID, "agent", opts)
}

// AgentListParams are the arguments of Agents.List.
type AgentListParams struct {
	// OrgID filters by organisation when non-empty.
	OrgID string
}

// List lists agents: GET /api/v1/agents[?org_id=…]. Empty params list all.
func (s *AgentsService) List(ctx context.Context, p AgentListParams, opts ...RequestOption) ([]Agent, error) {
	r := &request{path: "/api/v1/agents"}
	if p.OrgID != "" {
		r.query = url.Values{"org_id": {p.OrgID}}
	}
	return list[Agent](ctx, s.client, r, "agents", "", opts)
}

// Revoke revokes an agent: POST /api/v1/agents/{agent_id}/revoke. An empty
// reason sends "manual_revocation". On success the agent's cached tokens are
// evicted.
func (s *AgentsService) Revoke(ctx context.Context, agentID, reason string, opts ...RequestOption) error {
	path, err := buildPath("/api/v1/agents/{agent_id}/revoke", agentID)
	if err != nil {
		return err
	}
	body := struct {
		Reason string `json:"reason"`
	}{orDefault(reason, "manual_revocation")}
	if _, err := s.client.do(ctx, &request{method: http.MethodPost, path: path, body: body}, opts); err != nil {
		return err
	}
	s.client.tokens.evictAgent(agentID)
	return nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// nonNil makes a nil slice encode as [], for keys the gateway always expects.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
