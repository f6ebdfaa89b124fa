package agenttrust

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
)

var allSentinels = []error{ErrValidation, ErrAuthentication, ErrAuthorization, ErrNotFound, ErrRateLimited,
	ErrNetwork, ErrDecode, ErrJSONRPC, ErrTokenExpired, ErrAgentRevoked, ErrActionDenied,
	ErrElevationRequired, ErrGuardianUnavailable}

// onlySentinel asserts err matches ErrAgentTrust and want, and no other sentinel.
func onlySentinel(t testing.TB, err, want error) {
	t.Helper()
	if !errors.Is(err, ErrAgentTrust) {
		t.Errorf("%v does not match ErrAgentTrust", err)
	}
	for _, s := range allSentinels {
		if got := errors.Is(err, s); got != (s == want) {
			t.Errorf("errors.Is(%v, %v) = %v", err, s, got)
		}
	}
	var ae *AgentTrustError
	if !errors.As(err, &ae) {
		t.Errorf("errors.As(*AgentTrustError) failed for %T", err)
	}
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
		if !tc.as(err) {
			t.Errorf("%s: errors.As to its kind type failed (%T)", tc.code, err)
		}
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("%s: cause lost", tc.code)
		}
		if want := "agenttrust: boom (code " + tc.code + ")"; err.Error() != want {
			t.Errorf("Error() = %q, want %q", err.Error(), want)
		}
		// A wrapped SDK error still matches.
		wrapped := fmt.Errorf("outer: %w", err)
		onlySentinel(t, wrapped, tc.sentinel)
	}
}

func TestErrorString(t *testing.T) {
	e := &AgentTrustError{Status: 404, Code: CodeNotFound, Message: "agent not found", RequestID: "req-1"}
	if got := e.Error(); got != "agenttrust: agent not found (code NOT_FOUND, status 404, request req-1)" {
		t.Errorf("Error() = %q", got)
	}
}

func TestJSONRPCError(t *testing.T) {
	var err error = &JSONRPCError{AgentTrustError: &AgentTrustError{Code: CodeJSONRPC, Message: "bad params"}, RPCCode: -32602}
	onlySentinel(t, err, ErrJSONRPC)
	var je *JSONRPCError
	if !errors.As(err, &je) || je.RPCCode != -32602 {
		t.Errorf("As JSONRPCError: %v", je)
	}
}

func TestNetworkErrorWrapsContext(t *testing.T) {
	for _, cause := range []error{context.Canceled, context.DeadlineExceeded} {
		err := networkErr(fmt.Errorf("Get \"http://x\": %w", cause))
		onlySentinel(t, err, ErrNetwork)
		if !errors.Is(err, cause) {
			t.Errorf("errors.Is(%v, %v) false", err, cause)
		}
	}
}
