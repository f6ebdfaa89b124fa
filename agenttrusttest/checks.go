package agenttrusttest

import (
	"net/http"
	"unicode/utf8"
)

// Policy is the deterministic action-check policy. Tools are matched by the
// exact action_name of the check. A tool both denied and listed for
// elevation is denied. Every other tool is allowed.
type Policy struct {
	Deny      map[string]string `json:"deny"`      // tool name -> reason
	Elevation []string          `json:"elevation"` // tools that require approval
}

func (p Policy) clone() Policy {
	out := Policy{Deny: make(map[string]string, len(p.Deny))}
	for k, v := range p.Deny {
		out.Deny[k] = v
	}
	out.Elevation = append([]string(nil), p.Elevation...)
	return out
}

func (p Policy) needsElevation(tool string) bool {
	for _, t := range p.Elevation {
		if t == tool {
			return true
		}
	}
	return false
}

// SetPolicy replaces the whole policy.
func (s *Server) SetPolicy(p Policy) {
	s.mu.Lock()
	s.st.policy = p.clone()
	s.mu.Unlock()
}

// DenyTool makes checks of tool answer allowed=false with reason.
func (s *Server) DenyTool(tool, reason string) {
	s.mu.Lock()
	s.st.policy.Deny[tool] = reason
	s.mu.Unlock()
}

// RequireElevation makes checks of tool require an approval.
func (s *Server) RequireElevation(tool string) {
	s.mu.Lock()
	if !s.st.policy.needsElevation(tool) {
		s.st.policy.Elevation = append(s.st.policy.Elevation, tool)
	}
	s.mu.Unlock()
}

// AllowTool removes tool from the deny and elevation lists.
func (s *Server) AllowTool(tool string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.st.policy.Deny, tool)
	kept := s.st.policy.Elevation[:0:0]
	for _, t := range s.st.policy.Elevation {
		if t != tool {
			kept = append(kept, t)
		}
	}
	s.st.policy.Elevation = kept
}

// maxSummaryRunes is the limit on action_input_summary, in runes.
const maxSummaryRunes = 200

type checkRequest struct {
	AgentID            string `json:"agent_id" wire:"always,nonempty"`
	SessionID          string `json:"session_id" wire:"always"`
	ActionName         string `json:"action_name" wire:"always,nonempty"`
	ActionSource       string `json:"action_source" wire:"always"`
	ActionInputSummary string `json:"action_input_summary" wire:"always"`
	ActionEffect       string `json:"action_effect" wire:"truthy"`
}

func (r checkRequest) validate() string {
	if r.ActionSource != "api" {
		return `key "action_source" must be "api"`
	}
	if utf8.RuneCountInString(r.ActionInputSummary) > maxSummaryRunes {
		return `key "action_input_summary" must be at most 200 characters`
	}
	return ""
}

type checkResult struct {
	Allowed           bool    `json:"allowed"`
	CheckID           string  `json:"check_id"`
	Confidence        float64 `json:"confidence"`
	GuardTier         string  `json:"guard_tier"`
	LatencyMs         int     `json:"latency_ms"`
	Reason            string  `json:"reason"`
	ElevationRequired bool    `json:"elevation_required"`
	ApprovalID        string  `json:"approval_id,omitempty"`
}

// check decides, in order: unknown agent, revoked agent, deny list,
// elevation (pending, approved or denied approval for this agent, session
// and tool), else allow. A denial is a 200 with allowed=false.
func (s *Server) check(c *call, req checkRequest) {
	if !s.checkCredentials(c, req.AgentID) {
		return
	}
	now := s.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.checks = append(s.st.checks, CheckRecord(req))
	res := checkResult{CheckID: s.st.nextID("chk"), Confidence: 0.99, GuardTier: "fast", LatencyMs: 1}
	ag, known := s.st.agents.get(req.AgentID)
	deny, denied := s.st.policy.Deny[req.ActionName]
	switch {
	case !known:
		res.Reason = "unknown agent"
	case !ag.active():
		res.Reason = "agent revoked"
	case denied:
		res.Reason = deny
		if res.Reason == "" {
			res.Reason = "denied by policy"
		}
	case s.st.policy.needsElevation(req.ActionName):
		ap := s.findApprovalLocked(req.AgentID, req.SessionID, req.ActionName)
		switch {
		case ap == nil:
			ap = s.newApprovalLocked(ag, req, now)
			fallthrough
		case ap.Status == approvalPending:
			res.Reason = "elevation required: approval pending"
			res.ElevationRequired = true
			res.ApprovalID = ap.ID
		case ap.Status == approvalApproved:
			res.Allowed = true
			res.Reason = "approved by " + ap.DecidedBy
		default:
			res.Reason = "approval denied"
		}
	default:
		res.Allowed = true
		res.Reason = "allowed by policy"
	}
	if sess, ok := s.st.sessions.get(req.SessionID); ok && req.SessionID != "" {
		sess.count(req.ActionEffect, res.Allowed, now)
	}
	c.reply(http.StatusOK, res)
}
