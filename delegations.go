package agenttrust

import (
	"context"
	"net/http"
	"time"
)

// DelegationsService delegates scopes from one agent to another (gateway).
type DelegationsService service

// DelegationCreateParams are the arguments of Delegations.Create.
type DelegationCreateParams struct {
	FromAgentID string
	ToAgentID   string
	// Scope is what is delegated; nil sends []. The gateway refuses a scope
	// the delegator does not hold.
	Scope []string
	// TTLSeconds is the lifetime; 0 sends 3600.
	TTLSeconds int
	// Restrictions are passed through when non-nil; an empty map sends {}.
	Restrictions map[string]any
	// ParentDelegationID chains this delegation to another when non-nil; a
	// pointer to "" sends "".
	ParentDelegationID *string
}

type delegationCreateWire struct {
	FromAgentID        string          `json:"from_agent_id"`
	ToAgentID          string          `json:"to_agent_id"`
	Scope              []string        `json:"scope"`
	TTLSeconds         int             `json:"ttl_seconds"`
	Restrictions       *map[string]any `json:"restrictions,omitempty"`
	ParentDelegationID *string         `json:"parent_delegation_id,omitempty"`
}

// Create delegates scopes: POST /api/v1/delegations.
func (s *DelegationsService) Create(ctx context.Context, p DelegationCreateParams, opts ...RequestOption) (*Delegation, error) {
	body := &delegationCreateWire{
		FromAgentID:        p.FromAgentID,
		ToAgentID:          p.ToAgentID,
		Scope:              nonNil(p.Scope),
		TTLSeconds:         p.TTLSeconds,
		ParentDelegationID: p.ParentDelegationID,
	}
	if body.TTLSeconds == 0 {
		body.TTLSeconds = 3600
	}
	if p.Restrictions != nil {
		body.Restrictions = &p.Restrictions
	}
	return call[Delegation](ctx, s.client, &request{method: http.MethodPost, path: "/api/v1/delegations", body: body}, "delegation", opts)
}

// DelegationListParams are the arguments of Delegations.List; there are
// none yet.
type DelegationListParams struct{}

// List lists delegations: GET /api/v1/delegations.
func (s *DelegationsService) List(ctx context.Context, _ DelegationListParams, opts ...RequestOption) ([]Delegation, error) {
	return list[Delegation](ctx, s.client, &request{path: "/api/v1/delegations"}, "delegations", "", opts)
}

// Revoke revokes a delegation: DELETE /api/v1/delegations/{delegation_id}.
// Any 2xx reply is success; its body is not read.
func (s *DelegationsService) Revoke(ctx context.Context, delegationID string, opts ...RequestOption) error {
	return deleteAt(ctx, s.client, "/api/v1/delegations/{delegation_id}", delegationID, opts)
}

// InitSession opens an A2A session under a delegation: a bodiless
// POST /api/v1/delegations/{delegation_id}/session.
func (s *DelegationsService) InitSession(ctx context.Context, delegationID string, opts ...RequestOption) (*Session, error) {
	return callAt[Session](ctx, s.client, http.MethodPost, "/api/v1/delegations/{delegation_id}/session", delegationID, "", opts)
}

// Delegation is a delegation of scopes between agents.
type Delegation struct {
	ID           string         `json:"id"`
	FromAgentID  string         `json:"from_agent_id"`
	ToAgentID    string         `json:"to_agent_id"`
	Scope        []string       `json:"scope"`
	Restrictions map[string]any `json:"restrictions"`
	// DelegationChain lists the delegation ids from the root, e.g.
	// ["del-001", "del-003"].
	DelegationChain []string  `json:"delegation_chain"`
	ExpiresAt       time.Time `json:"expires_at"`
	RevokedAt       time.Time `json:"revoked_at"`
	CreatedAt       time.Time `json:"created_at"`
}

// UnmarshalJSON reads timestamps leniently.
func (d *Delegation) UnmarshalJSON(b []byte) error {
	*d = Delegation{}
	return unmarshalModel(b, d)
}
