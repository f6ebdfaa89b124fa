package agenttrusttest

import (
	"fmt"
	"net/http"
	"time"
)

type delegation struct {
	ID              string         `json:"id"`
	FromAgentID     string         `json:"from_agent_id"`
	ToAgentID       string         `json:"to_agent_id"`
	Scope           []string       `json:"scope"`
	Restrictions    map[string]any `json:"restrictions"`
	DelegationChain []string       `json:"delegation_chain"`
	ExpiresAt       ts             `json:"expires_at"`
	RevokedAt       ts             `json:"revoked_at"`
	CreatedAt       ts             `json:"created_at"`
	orgID           string
}

// unusable returns why the delegation cannot be used at now, or "".
func (d *delegation) unusable(now time.Time) string {
	switch {
	case !time.Time(d.RevokedAt).IsZero():
		return "revoked"
	case now.After(time.Time(d.ExpiresAt)):
		return "expired"
	}
	return ""
}

type createDelegationRequest struct {
	FromAgentID        string         `json:"from_agent_id" wire:"always,nonempty"`
	ToAgentID          string         `json:"to_agent_id" wire:"always,nonempty"`
	Scope              []string       `json:"scope" wire:"always"`
	TTLSeconds         int64          `json:"ttl_seconds" wire:"always"`
	Restrictions       map[string]any `json:"restrictions"`
	ParentDelegationID *string        `json:"parent_delegation_id"`
}

func (r createDelegationRequest) validate() string {
	return positiveSecondsErr("ttl_seconds", r.TTLSeconds)
}

// createDelegation narrows scope: every requested scope must be among the
// delegator's capabilities or, with a parent, within the parent's scope
// (the parent must have been granted to the delegator). A child never
// outlives its parent.
func (s *Server) createDelegation(c *call, req createDelegationRequest) {
	now := s.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	from := s.activeAgentLocked(c, req.FromAgentID)
	if from == nil || s.activeAgentLocked(c, req.ToAgentID) == nil {
		return
	}
	expires := now.Add(time.Duration(req.TTLSeconds) * time.Second)
	var chain []string
	if req.ParentDelegationID != nil {
		parent, ok := s.st.delegations.get(*req.ParentDelegationID)
		if !ok {
			c.fail(http.StatusNotFound, fmt.Sprintf("parent delegation %q not found", *req.ParentDelegationID))
			return
		}
		if why := parent.unusable(now); why != "" {
			c.fail(http.StatusForbidden, "parent delegation "+why)
			return
		}
		if parent.ToAgentID != req.FromAgentID {
			c.fail(http.StatusForbidden, "parent delegation was not granted to from_agent_id")
			return
		}
		if sc, bad := firstOutside(req.Scope, parent.Scope); bad {
			c.fail(http.StatusForbidden, fmt.Sprintf("scope %q exceeds the parent delegation's scope", sc))
			return
		}
		if pe := time.Time(parent.ExpiresAt); expires.After(pe) {
			expires = pe
		}
		chain = parent.DelegationChain
	} else if sc, bad := firstOutside(req.Scope, from.Capabilities); bad {
		c.fail(http.StatusForbidden, fmt.Sprintf("scope %q exceeds the delegator's capabilities", sc))
		return
	}
	restrictions := req.Restrictions
	if restrictions == nil {
		restrictions = map[string]any{}
	}
	d := &delegation{
		ID: s.st.nextID("del"), FromAgentID: req.FromAgentID, ToAgentID: req.ToAgentID,
		Scope: append([]string{}, req.Scope...), Restrictions: restrictions,
		ExpiresAt: ts(expires), CreatedAt: ts(now), orgID: c.org,
	}
	d.DelegationChain = append(append([]string{}, chain...), d.ID)
	s.st.delegations.put(d.ID, d)
	c.reply(http.StatusCreated, map[string]any{"delegation": *d})
}

func (s *Server) listDelegations(c *call) {
	out := listOf(s, &s.st.delegations, func(d *delegation) bool { return d.orgID == c.org })
	c.reply(http.StatusOK, map[string]any{"delegations": out})
}

// revokeDelegation revokes the delegation and every delegation derived
// from it.
func (s *Server) revokeDelegation(c *call) {
	id := c.param("delegation_id")
	now := ts(s.Now())
	if updateOr404(s, c, &s.st.delegations, "delegation_id", "delegation not found", func(*delegation) {
		for _, d := range s.st.delegations.byID {
			for _, link := range d.DelegationChain {
				if link == id && time.Time(d.RevokedAt).IsZero() {
					d.RevokedAt = now
				}
			}
		}
	}) {
		c.noContent()
	}
}

// delegationSession opens a read-only A2A session for the delegate, with
// the delegation's scope as ceiling.
func (s *Server) delegationSession(c *call) {
	now := s.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.st.delegations.get(c.param("delegation_id"))
	if !ok {
		c.fail(http.StatusNotFound, "delegation not found")
		return
	}
	if why := d.unusable(now); why != "" {
		c.fail(http.StatusForbidden, "delegation "+why)
		return
	}
	org := d.orgID
	if ag, ok := s.st.agents.get(d.ToAgentID); ok {
		org = ag.OrgID
	}
	se := s.newSessionLocked("a2a", d.ToAgentID, org, d.Scope)
	se.DelegationID = d.ID
	c.reply(http.StatusOK, *se)
}
