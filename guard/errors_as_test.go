package guard

import (
	"errors"
	"testing"

	agenttrust "github.com/agenttrustid/agenttrust-go"
)

func TestDenialsAreAgentTrustErrors(t *testing.T) {
	for _, err := range []error{
		DenialError("rm", Decision{Reason: "nope", CheckID: "c1"}),
		DenialError("rm", Decision{Reason: "ask", ElevationRequired: true, ApprovalID: "ap-1"}),
	} {
		var ae *agenttrust.AgentTrustError
		if !errors.As(err, &ae) {
			t.Fatalf("errors.As(%T, *AgentTrustError) = false", err)
		}
		if ae.Message != "Tool 'rm' denied: "+map[bool]string{true: "ask", false: "nope"}[ae.Code == agenttrust.CodeElevationRequired] {
			t.Errorf("message %q", ae.Message)
		}
		if !errors.Is(err, agenttrust.ErrAgentTrust) || !errors.Is(err, ErrDenied) {
			t.Errorf("%T does not match ErrAgentTrust and ErrDenied", err)
		}
	}
	var ae *agenttrust.AgentTrustError
	errors.As(DenialError("rm", Decision{ElevationRequired: true, ApprovalID: "ap-1"}), &ae)
	if ae.Code != agenttrust.CodeElevationRequired || ae.Details["approval_id"] != "ap-1" || ae.Details["elevation_required"] != true {
		t.Errorf("elevation as AgentTrustError: %+v", ae)
	}
}
