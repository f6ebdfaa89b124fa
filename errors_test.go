package agenttrust

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var allSentinels = []error{ErrValidation, ErrAuthentication, ErrAuthorization, ErrNotFound, ErrRateLimited,
	ErrNetwork, ErrDecode, ErrJSONRPC, ErrTokenExpired, ErrAgentRevoked, ErrActionDenied,
	ErrElevationRequired, ErrGuardianUnavailable}

// onlySentinel asserts err matches ErrAgentTrust and want, and no other sentinel.
func onlySentinel(t testing.TB, err, want error) {
	t.Helper()
	assert.ErrorIs(t, err, ErrAgentTrust, "%v does not match ErrAgentTrust", err)
	for _, s := range allSentinels {
		assert.Equal(t, s == want, errors.Is(err, s), "errors.Is(%v, %v)", err, s)
	}
	var ae *AgentTrustError
	assert.ErrorAs(t, err, &ae, "errors.As(*AgentTrustError) failed for %T", err)
}

func TestNewErrorKinds(t *testing.T) {
	cause := io.ErrUnexpectedEOF
	cases := []struct {
		code     string
		sentinel error
		as       func(error) bool
	}{
		{CodeValidation, ErrValidation, func(e error) bool { var x *ValidationError; return errors.As(e, &x) }},
		{CodeAuthFailed, ErrAuthentication, func(e error) bool { var x *AuthenticationError; return errors.As(e, &x) }},
		{CodeAuthDenied, ErrAuthorization, func(e error) bool { var x *AuthorizationError; return errors.As(e, &x) }},
		{CodeNotFound, ErrNotFound, func(e error) bool { var x *NotFoundError; return errors.As(e, &x) }},
		{CodeRateLimited, ErrRateLimited, func(e error) bool { var x *RateLimitError; return errors.As(e, &x) }},
		{CodeNetwork, ErrNetwork, func(e error) bool { var x *NetworkError; return errors.As(e, &x) }},
		{CodeDecode, ErrDecode, func(e error) bool { var x *DecodeError; return errors.As(e, &x) }},
		{CodeTokenExpired, ErrTokenExpired, func(e error) bool { var x *TokenExpiredError; return errors.As(e, &x) }},
		{CodeAgentRevoked, ErrAgentRevoked, func(e error) bool { var x *AgentRevokedError; return errors.As(e, &x) }},
		{CodeActionDenied, ErrActionDenied, func(e error) bool { return true }},
		{CodeElevationRequired, ErrElevationRequired, func(e error) bool { return true }},
		{CodeGuardianUnavailable, ErrGuardianUnavailable, func(e error) bool { return true }},
		{"HTTP_500", nil, func(e error) bool { _, ok := e.(*AgentTrustError); return ok }},
	}
	for _, tc := range cases {
		err := NewError(tc.code, "boom", cause)
		onlySentinel(t, err, tc.sentinel)
		assert.True(t, tc.as(err), "%s: errors.As to its kind type failed (%T)", tc.code, err)
		assert.ErrorIs(t, err, io.ErrUnexpectedEOF, "%s: cause lost", tc.code)
		want := "agenttrust: boom (code " + tc.code + ")"
		assert.Equal(t, want, err.Error(), "Error() = %q, want %q", err.Error(), want)
		// A wrapped SDK error still matches.
		wrapped := fmt.Errorf("outer: %w", err)
		onlySentinel(t, wrapped, tc.sentinel)
	}
}

// TestNewErrorWithoutKindType: codes without a kind-specific type, known
// or not, give a bare *AgentTrustError.
func TestNewErrorWithoutKindType(t *testing.T) {
	for _, code := range []string{CodeJSONRPC, CodeActionDenied, CodeElevationRequired, CodeGuardianUnavailable, "HTTP_503", ""} {
		err := NewError(code, "boom", nil)
		_, ok := err.(*AgentTrustError)
		assert.True(t, ok, "%q: NewError gave a %T", code, err)
	}
}

func TestErrorString(t *testing.T) {
	e := &AgentTrustError{Status: 404, Code: CodeNotFound, Message: "agent not found", RequestID: "req-1"}
	got := e.Error()
	assert.Equal(t, "agenttrust: agent not found (code NOT_FOUND, status 404, request req-1)", got, "Error() = %q", got)
}

func TestJSONRPCError(t *testing.T) {
	var err error = &JSONRPCError{AgentTrustError: &AgentTrustError{Code: CodeJSONRPC, Message: "bad params"}, RPCCode: -32602}
	onlySentinel(t, err, ErrJSONRPC)
	var je *JSONRPCError
	require.ErrorAs(t, err, &je, "As JSONRPCError: %v", je)
	assert.Equal(t, -32602, je.RPCCode, "As JSONRPCError: %v", je)
}

func TestNetworkErrorWrapsContext(t *testing.T) {
	for _, cause := range []error{context.Canceled, context.DeadlineExceeded} {
		err := networkErr(fmt.Errorf("Get \"http://x\": %w", cause))
		onlySentinel(t, err, ErrNetwork)
		assert.ErrorIs(t, err, cause, "errors.Is(%v, %v) false", err, cause)
	}
}
