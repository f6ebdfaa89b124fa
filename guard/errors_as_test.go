package guard

import (
	"errors"
	"fmt"
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

// The base error is carried, not rebuilt: every errors.As yields the value
// the denial embeds, so what one caller reads another sees too.
func TestDenialsCarryTheirBaseError(t *testing.T) {
	deny := DenialError("rm", Decision{Reason: "nope", CheckID: "c1"})
	elev := DenialError("rm", Decision{Reason: "ask", ElevationRequired: true, ApprovalID: "ap-1"})
	var de *DeniedError
	var ee *ElevationRequiredError
	if !errors.As(deny, &de) || !errors.As(elev, &ee) {
		t.Fatal("kinds")
	}
	for _, tc := range []struct {
		err  error
		base *agenttrust.AgentTrustError
		code string
		text string
	}{
		{deny, de.AgentTrustError, agenttrust.CodeActionDenied, "agenttrust: Tool 'rm' denied: nope (code ACTION_DENIED)"},
		{elev, ee.AgentTrustError, agenttrust.CodeElevationRequired, "agenttrust: Tool 'rm' denied: ask (code ELEVATION_REQUIRED, approval ap-1)"},
	} {
		var a1, a2 *agenttrust.AgentTrustError
		if !errors.As(tc.err, &a1) || !errors.As(tc.err, &a2) || a1 != a2 || a1 != tc.base || a1 == nil {
			t.Fatalf("%T: As gave %p and %p, embedded %p", tc.err, a1, a2, tc.base)
		}
		if a1.Code != tc.code || a1.Status != 0 || !errors.Is(tc.err, sentinelOf(tc.code)) {
			t.Errorf("%T: base %+v", tc.err, a1)
		}
		for _, verb := range []string{"%v", "%+v", "%s", "%#v", "%d"} {
			if got := fmt.Sprintf(verb, tc.err); got != tc.text {
				t.Errorf("%T %s: %q, want %q", tc.err, verb, got, tc.text)
			}
		}
	}
	if ee.Details()["approval_id"] != "ap-1" || ee.AgentTrustError.Details["elevation_required"] != true || de.Details == nil {
		t.Errorf("details: %v / %v", ee.Details(), de.Details)
	}
}

func sentinelOf(code string) error {
	if code == agenttrust.CodeElevationRequired {
		return agenttrust.ErrElevationRequired
	}
	return agenttrust.ErrActionDenied
}
