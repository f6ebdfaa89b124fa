package guard

import (
	"context"
	"errors"
	"time"

	agenttrust "github.com/agenttrustid/agenttrust-go"
)

// Approval is an elevation approval request as the gateway reports it.
type Approval = agenttrust.ApprovalRequest

// WaitOption configures WaitForApproval.
type WaitOption func(*waitConfig)

type waitConfig struct{ interval time.Duration }

// WithPollInterval sets how often WaitForApproval asks (default 2 s). A
// non-positive interval makes WaitForApproval return a validation error.
func WithPollInterval(d time.Duration) WaitOption {
	return func(c *waitConfig) { c.interval = d }
}

// WaitForApproval polls the approval until its status is no longer
// "pending" and returns it (approved, denied or any other status as
// received). When ctx ends first it returns ctx's error. An unavailable
// gateway (network failure, 5xx, 429 with its Retry-After honoured) is
// retried at the next poll; any other error ends the wait.
//
// It never re-runs the check: whether and when to call Check again after an
// approval is the caller's decision.
func (g *Guard) WaitForApproval(ctx context.Context, approvalID string, opts ...WaitOption) (Approval, error) {
	if ctx == nil {
		return Approval{}, validationErr("nil context")
	}
	if approvalID == "" {
		return Approval{}, validationErr("missing required approval_id")
	}
	wc := waitConfig{interval: DefaultPollInterval}
	for _, o := range opts {
		if o != nil {
			o(&wc)
		}
	}
	if wc.interval <= 0 {
		return Approval{}, validationErr("WithPollInterval: interval must be positive")
	}
	for {
		a, err := g.client.Approvals.Get(ctx, approvalID)
		delay := wc.interval
		switch {
		case err == nil:
			if a.Status != agenttrust.ApprovalPending {
				return *a, nil
			}
		default:
			switch classify(ctx.Err(), nil, err) {
			case outcomeCaller:
				return Approval{}, ctx.Err()
			case outcomeUnavailable:
				var ae *agenttrust.AgentTrustError
				if errors.As(err, &ae) && ae.RetryAfter > delay {
					delay = ae.RetryAfter
				}
			default:
				return Approval{}, err
			}
		}
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return Approval{}, ctx.Err()
		}
	}
}
