package guard

import (
	"errors"
	"fmt"
	"testing"

	agenttrust "github.com/agenttrustid/agenttrust-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDenialsAreAgentTrustErrors(t *testing.T) {
	for _, err := range []error{
		DenialError("rm", Decision{Reason: "nope", CheckID: "c1"}),
		DenialError("rm", Decision{Reason: "ask", ElevationRequired: true, ApprovalID: "ap-1"}),
	} {
		var ae *agenttrust.AgentTrustError
		require.ErrorAs(t, err, &ae, "errors.As(%T, *AgentTrustError) = false", err)
		assert.Equal(t, "Tool 'rm' denied: "+map[bool]string{true: "ask", false: "nope"}[ae.Code == agenttrust.CodeElevationRequired], ae.Message, "message %q", ae.Message)
		assert.ErrorIs(t, err, agenttrust.ErrAgentTrust, "%T does not match ErrAgentTrust and ErrDenied", err)
		assert.ErrorIs(t, err, ErrDenied, "%T does not match ErrAgentTrust and ErrDenied", err)
	}
	var ae *agenttrust.AgentTrustError
	errors.As(DenialError("rm", Decision{ElevationRequired: true, ApprovalID: "ap-1"}), &ae)
	assert.Equal(t, agenttrust.CodeElevationRequired, ae.Code, "elevation as AgentTrustError: %+v", ae)
	assert.Equal(t, "ap-1", ae.Details["approval_id"], "elevation as AgentTrustError: %+v", ae)
	assert.Equal(t, true, ae.Details["elevation_required"], "elevation as AgentTrustError: %+v", ae)
}

// The base error is carried, not rebuilt: every errors.As yields the value
// the denial embeds, so what one caller reads another sees too.
func TestDenialsCarryTheirBaseError(t *testing.T) {
	deny := DenialError("rm", Decision{Reason: "nope", CheckID: "c1"})
	elev := DenialError("rm", Decision{Reason: "ask", ElevationRequired: true, ApprovalID: "ap-1"})
	var de *DeniedError
	var ee *ElevationRequiredError
	require.ErrorAs(t, deny, &de, "kinds")
	require.ErrorAs(t, elev, &ee, "kinds")
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
		require.ErrorAs(t, tc.err, &a1, "%T: As gave %p and %p, embedded %p", tc.err, a1, a2, tc.base)
		require.ErrorAs(t, tc.err, &a2, "%T: As gave %p and %p, embedded %p", tc.err, a1, a2, tc.base)
		require.Same(t, a2, a1, "%T: As gave %p and %p, embedded %p", tc.err, a1, a2, tc.base)
		require.Same(t, tc.base, a1, "%T: As gave %p and %p, embedded %p", tc.err, a1, a2, tc.base)
		require.NotNil(t, a1, "%T: As gave %p and %p, embedded %p", tc.err, a1, a2, tc.base)
		assert.Equal(t, tc.code, a1.Code, "%T: base %+v", tc.err, a1)
		assert.EqualValues(t, 0, a1.Status, "%T: base %+v", tc.err, a1)
		assert.ErrorIs(t, tc.err, sentinelOf(tc.code), "%T: base %+v", tc.err, a1)
		for _, verb := range []string{"%v", "%+v", "%s", "%#v", "%d"} {
			got := fmt.Sprintf(verb, tc.err)
			assert.Equal(t, tc.text, got, "%T %s: %q, want %q", tc.err, verb, got, tc.text)
		}
	}
	assert.Equal(t, "ap-1", ee.Details()["approval_id"], "details: %v / %v", ee.Details(), de.Details)
	assert.Equal(t, true, ee.AgentTrustError.Details["elevation_required"], "details: %v / %v", ee.Details(), de.Details)
	assert.NotNil(t, de.Details, "details: %v / %v", ee.Details(), de.Details)
}

func sentinelOf(code string) error {
	if code == agenttrust.CodeElevationRequired {
		return agenttrust.ErrElevationRequired
	}
	return agenttrust.ErrActionDenied
}
