package agenttrusttest

import (
	"fmt"
	"net/http"
)

// Agent statuses.
const (
	statusActive  = "active"
	statusRevoked = "revoked"
)

type agent struct {
	ID           string         `json:"id"`
	Name         string         `json:"name"`
	OrgID        string         `json:"org_id"`
	Framework    string         `json:"framework"`
	PublicKey    string         `json:"public_key,omitempty"`
	Status       string         `json:"status"`
	Capabilities []string       `json:"capabilities"`
	Metadata     map[string]any `json:"metadata"`
	CreatedAt    ts             `json:"created_at"`
}

func (a *agent) active() bool { return a.Status == statusActive }

// allowedTargets returns metadata["allowed_targets"] as strings, and whether
// the agent restricts its targets at all.
func (a *agent) allowedTargets() ([]string, bool) {
	raw, ok := a.Metadata["allowed_targets"].([]any)
	if !ok {
		return nil, false
	}
	out := make([]string, 0, len(raw))
	for _, v := range raw {
		if s, ok := v.(string); ok {
			out = append(out, s)
		}
	}
	return out, true
}

// AgentSeed describes an agent created directly with SeedAgent.
type AgentSeed struct {
	ID           string         // "" picks "agent-<n>"
	Name         string         // "" uses the id
	OrgID        string         // "" uses DefaultOrgID
	Framework    string         // "" uses "custom"
	Capabilities []string       // also the scopes tokens may carry
	Metadata     map[string]any // e.g. {"allowed_targets": []any{"svc-a"}}
	PublicKey    string         // optional Ed25519 PKIX PEM, shown on agent cards
}

// CreateAgent adds an active agent in DefaultOrgID without HTTP and returns
// its id.
func (s *Server) CreateAgent(name string, capabilities ...string) (agentID string) {
	return s.SeedAgent(AgentSeed{Name: name, Capabilities: capabilities})
}

// SeedAgent adds an active agent without HTTP and returns its id. It panics
// when the id or the name (within the org) is already taken.
func (s *Server) SeedAgent(a AgentSeed) (agentID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a.OrgID == "" {
		a.OrgID = DefaultOrgID
	}
	if a.ID != "" {
		if s.st.agents.has(a.ID) {
			panic(fmt.Sprintf("agenttrusttest: SeedAgent: agent id %q already exists", a.ID))
		}
	}
	ag, err := s.addAgentLocked(a)
	if err != "" {
		panic("agenttrusttest: SeedAgent: " + err)
	}
	return ag.ID
}

// addAgentLocked creates an agent; it returns a conflict message when the
// name is taken in the org.
func (s *Server) addAgentLocked(a AgentSeed) (*agent, string) {
	for _, o := range s.st.agents.byID {
		if o.OrgID == a.OrgID && o.Name == a.Name {
			return nil, fmt.Sprintf("agent %q already exists in org %q", a.Name, a.OrgID)
		}
	}
	id := a.ID
	for id == "" || s.st.agents.has(id) {
		id = s.st.nextID("agent")
	}
	if a.Name == "" {
		a.Name = id
	}
	if a.Framework == "" {
		a.Framework = "custom"
	}
	caps := append([]string{}, a.Capabilities...)
	meta := a.Metadata
	if meta == nil {
		meta = map[string]any{}
	}
	ag := &agent{
		ID: id, Name: a.Name, OrgID: a.OrgID, Framework: a.Framework, PublicKey: a.PublicKey,
		Status: statusActive, Capabilities: caps, Metadata: meta, CreatedAt: ts(s.Now()),
	}
	s.st.agents.put(id, ag)
	return ag, ""
}

type createAgentRequest struct {
	Name         string         `json:"name" wire:"always,nonempty"`
	Framework    string         `json:"framework" wire:"always"`
	Capabilities []string       `json:"capabilities" wire:"always"`
	Metadata     map[string]any `json:"metadata" wire:"always"`
	PublicKey    *string        `json:"public_key" wire:"nonempty"` // Ed25519 PKIX PEM; older clients omit it
	OrgID        string         `json:"org_id" wire:"truthy"`
}

func (r createAgentRequest) validate() string {
	if r.PublicKey == nil {
		return ""
	}
	if _, err := parseAgentPublicKey(*r.PublicKey); err != nil {
		return `key "public_key" must be an Ed25519 public key in PKIX PEM: ` + err.Error()
	}
	return ""
}

func (s *Server) createAgent(c *call, req createAgentRequest) {
	seed := AgentSeed{Name: req.Name, OrgID: c.org, Framework: req.Framework, Capabilities: req.Capabilities, Metadata: req.Metadata}
	if req.OrgID != "" {
		seed.OrgID = req.OrgID
	}
	if req.PublicKey != nil {
		seed.PublicKey = *req.PublicKey
	}
	s.mu.Lock()
	ag, conflict := s.addAgentLocked(seed)
	var out agent
	if ag != nil {
		out = *ag
	}
	s.mu.Unlock()
	if conflict != "" {
		c.fail(http.StatusConflict, conflict)
		return
	}
	c.reply(http.StatusCreated, map[string]any{"agent": out})
}

func (s *Server) getAgent(c *call) {
	if ag, ok := getOr404(s, c, &s.st.agents, "agent_id", "agent not found"); ok {
		c.reply(http.StatusOK, map[string]any{"agent": ag})
	}
}

func (s *Server) listAgents(c *call) {
	org := c.r.URL.Query().Get("org_id")
	if org == "" {
		org = c.org
	}
	out := listOf(s, &s.st.agents, func(ag *agent) bool { return ag.OrgID == org })
	c.reply(http.StatusOK, map[string]any{"agents": out})
}

type revokeAgentRequest struct {
	Reason string `json:"reason" wire:"always"`
}

func (s *Server) revokeAgent(c *call, req revokeAgentRequest) {
	id := c.param("agent_id")
	if updateOr404(s, c, &s.st.agents, "agent_id", "agent not found", func(ag *agent) {
		ag.Status = statusRevoked
		for _, t := range s.st.tokens {
			if t.agentID == id && t.revokedReason == "" {
				t.revokedReason = "agent revoked"
			}
		}
	}) {
		c.reply(http.StatusOK, map[string]any{"agent_id": id, "status": statusRevoked, "reason": req.Reason})
	}
}

// agentErrLocked checks that id names an active agent. It returns the HTTP
// status and message for a failure, or 0.
func (s *Server) agentErrLocked(id string) (int, string) {
	ag, ok := s.st.agents.get(id)
	switch {
	case !ok:
		return http.StatusNotFound, fmt.Sprintf("agent %q not found", id)
	case !ag.active():
		return http.StatusForbidden, fmt.Sprintf("agent %q is %s", id, ag.Status)
	}
	return 0, ""
}

// activeAgentLocked returns the agent id names when it is active; otherwise
// it answers the failure (404 or 403) and returns nil.
func (s *Server) activeAgentLocked(c *call, id string) *agent {
	if status, msg := s.agentErrLocked(id); status != 0 {
		c.fail(status, msg)
		return nil
	}
	ag, _ := s.st.agents.get(id)
	return ag
}

// firstOutside returns the first of want that is not in have.
func firstOutside(want, have []string) (string, bool) {
	set := make(map[string]bool, len(have))
	for _, h := range have {
		set[h] = true
	}
	for _, w := range want {
		if !set[w] {
			return w, true
		}
	}
	return "", false
}
