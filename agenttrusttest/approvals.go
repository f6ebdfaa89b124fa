package agenttrusttest

import (
	"net/http"
	"time"
)

// Approval statuses.
const (
	approvalPending  = "pending"
	approvalApproved = "approved"
	approvalDenied   = "denied"
)

// approvalTTL is how long a pending approval is shown as valid.
const approvalTTL = time.Hour

type approval struct {
	ID           string `json:"id"`
	SessionID    string `json:"session_id"`
	AgentID      string `json:"agent_id"`
	OrgID        string `json:"org_id"`
	ActionName   string `json:"action_name"`
	ActionEffect string `json:"action_effect"`
	Status       string `json:"status"`
	CreatedAt    ts     `json:"created_at"`
	ExpiresAt    ts     `json:"expires_at"`
	DecidedBy    string `json:"decided_by"`
	seq          int
}

// findApprovalLocked returns the latest approval for the agent, session and
// action, or nil.
func (s *Server) findApprovalLocked(agentID, sessionID, action string) *approval {
	var best *approval
	for _, ap := range s.st.approvals.byID {
		if ap.AgentID == agentID && ap.SessionID == sessionID && ap.ActionName == action &&
			(best == nil || ap.seq > best.seq) {
			best = ap
		}
	}
	return best
}

func (s *Server) newApprovalLocked(ag *agent, req checkRequest, now time.Time) *approval {
	ap := &approval{
		ID: s.st.nextID("apr"), SessionID: req.SessionID, AgentID: ag.ID, OrgID: ag.OrgID,
		ActionName: req.ActionName, ActionEffect: req.ActionEffect, Status: approvalPending,
		CreatedAt: ts(now), ExpiresAt: ts(now.Add(approvalTTL)), seq: s.st.seq["apr"],
	}
	s.st.approvals.put(ap.ID, ap)
	return ap
}

func (s *Server) getApproval(c *call) {
	if ap, ok := getOr404(s, c, &s.st.approvals, "approval_id", "approval not found"); ok {
		c.reply(http.StatusOK, ap)
	}
}

type decideRequest struct {
	DecidedBy string `json:"decided_by" wire:"always,nonempty"`
}

func (s *Server) approve(c *call, req decideRequest) { s.decide(c, req, approvalApproved) }

func (s *Server) deny(c *call, req decideRequest) { s.decide(c, req, approvalDenied) }

// decide settles a pending approval; deciding twice is a 409.
func (s *Server) decide(c *call, req decideRequest, status string) {
	prev := ""
	if !updateOr404(s, c, &s.st.approvals, "approval_id", "approval not found", func(ap *approval) {
		prev = ap.Status
		if prev == approvalPending {
			ap.Status, ap.DecidedBy = status, req.DecidedBy
		}
	}) {
		return
	}
	if prev != approvalPending {
		c.fail(http.StatusConflict, "approval already "+prev)
		return
	}
	c.reply(http.StatusOK, map[string]any{"status": status, "approval_id": c.param("approval_id"), "decided_by": req.DecidedBy})
}
