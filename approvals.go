package agenttrust

import (
	"context"
	"net/http"
)

// ApprovalsService decides and reads elevation approvals (gateway).
type ApprovalsService service

// Approve approves a pending elevation: POST /mcp/approvals/{approval_id}/approve.
// An empty decidedBy sends "sdk_user". It returns the gateway's answer,
// e.g. {"status": "approved"}.
func (s *ApprovalsService) Approve(ctx context.Context, approvalID, decidedBy string, opts ...RequestOption) (map[string]any, error) {
	return s.decide(ctx, "/mcp/approvals/{approval_id}/approve", approvalID, decidedBy, opts)
}

// Deny denies a pending elevation: POST /mcp/approvals/{approval_id}/deny.
// An empty decidedBy sends "sdk_user".
func (s *ApprovalsService) Deny(ctx context.Context, approvalID, decidedBy string, opts ...RequestOption) (map[string]any, error) {
	return s.decide(ctx, "/mcp/approvals/{approval_id}/deny", approvalID, decidedBy, opts)
}

func (s *ApprovalsService) decide(ctx context.Context, tmpl, approvalID, decidedBy string, opts []RequestOption) (map[string]any, error) {
	path, err := buildPath(tmpl, approvalID)
	if err != nil {
		return nil, err
	}
	body := struct {
		DecidedBy string `json:"decided_by"`
	}{orDefault(decidedBy, "sdk_user")}
	return callRaw(ctx, s.client, &request{method: http.MethodPost, path: path, body: body}, opts)
}

// Get reads an approval: GET /mcp/approvals/{approval_id}. The SDK never
// links an approval to a later check; re-checking is up to the caller.
func (s *ApprovalsService) Get(ctx context.Context, approvalID string, opts ...RequestOption) (*ApprovalRequest, error) {
	return callAt[ApprovalRequest](ctx, s.client, http.MethodGet, "/mcp/approvals/{approval_id}", approvalID, "", opts)
}
