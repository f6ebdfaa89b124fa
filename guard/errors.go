package guard

import (
	"errors"
	"fmt"
	"io"
	"strconv"

	agenttrust "github.com/agenttrustid/agenttrust-go"
)

// Sentinels for errors.Is. They are the core SDK's sentinels under shorter
// names, so errors.Is(err, guard.ErrDenied) and
// errors.Is(err, agenttrust.ErrActionDenied) are the same test.
var (
	// ErrDenied matches *DeniedError and *ElevationRequiredError.
	ErrDenied = agenttrust.ErrActionDenied
	// ErrElevationRequired matches *ElevationRequiredError. Test it before
	// ErrDenied, which also matches an elevation.
	ErrElevationRequired = agenttrust.ErrElevationRequired
	// ErrGuardianUnavailable matches *UnavailableError.
	ErrGuardianUnavailable = agenttrust.ErrGuardianUnavailable
	// ErrClosed is returned by Check and Flush after Close.
	ErrClosed = errors.New("agenttrust: guard closed")
)

// DeniedError is returned by Check when the Guardian denied the tool and the
// Guard blocks on denials (the default). It matches ErrDenied and
// agenttrust.ErrAgentTrust.
//
// It embeds the *agenttrust.AgentTrustError it is, as the core SDK's kind
// types do: Code (always agenttrust.CodeActionDenied, "ACTION_DENIED"),
// Message ("Tool '<tool>' denied[: <reason>]") and Status 0 (a denial is an
// answer, not an HTTP error) read directly, and errors.As with
// *agenttrust.AgentTrustError yields that same value.
type DeniedError struct {
	*agenttrust.AgentTrustError
	// Tool is the tool that was checked.
	Tool string
	// Reason is the Guardian's explanation, possibly empty.
	Reason string
	// CheckID identifies the check at the gateway.
	CheckID string
	// GuardTier is the tier that decided, e.g. "fast".
	GuardTier string
}

// Error returns "agenttrust: Tool '<tool>' denied: <reason> (code ACTION_DENIED)".
func (e *DeniedError) Error() string {
	return "agenttrust: " + denialMessage(e.Tool, e.Reason) + " (code " + e.Code + ")"
}

// Unwrap returns the embedded *agenttrust.AgentTrustError.
func (e *DeniedError) Unwrap() error { return e.AgentTrustError }

// Is reports whether target is ErrDenied or agenttrust.ErrAgentTrust.
func (e *DeniedError) Is(target error) bool {
	return target == ErrDenied || target == agenttrust.ErrAgentTrust
}

// Format prints Error for every verb, %#v included.
func (e *DeniedError) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, e.Error()) }

// GoString is Error.
func (e *DeniedError) GoString() string { return e.Error() }

// ElevationRequiredError is returned by Check when the Guardian asks for a
// human approval before the tool may run, and the Guard blocks on denials.
// ApprovalID can be passed to Guard.WaitForApproval. It matches
// ErrElevationRequired, ErrDenied and agenttrust.ErrAgentTrust.
//
// Like DeniedError it embeds the *agenttrust.AgentTrustError it is: Code
// (always agenttrust.CodeElevationRequired, "ELEVATION_REQUIRED"), Message
// and Status 0 read directly, the details are in Details(), and errors.As
// with *agenttrust.AgentTrustError yields that same value.
type ElevationRequiredError struct {
	*agenttrust.AgentTrustError
	// Tool is the tool that was checked.
	Tool string
	// Reason is the Guardian's explanation, possibly empty.
	Reason string
	// CheckID identifies the check at the gateway.
	CheckID string
	// GuardTier is the tier that decided.
	GuardTier string
	// ApprovalID identifies the pending approval request.
	ApprovalID string
}

// Error returns "agenttrust: Tool '<tool>' denied: <reason> (code ELEVATION_REQUIRED, approval <id>)".
func (e *ElevationRequiredError) Error() string {
	s := "agenttrust: " + denialMessage(e.Tool, e.Reason) + " (code " + e.Code
	if e.ApprovalID != "" {
		s += ", approval " + e.ApprovalID
	}
	return s + ")"
}

// Unwrap returns the embedded *agenttrust.AgentTrustError.
func (e *ElevationRequiredError) Unwrap() error { return e.AgentTrustError }

// Is reports whether target is ErrElevationRequired, ErrDenied or
// agenttrust.ErrAgentTrust.
func (e *ElevationRequiredError) Is(target error) bool {
	return target == ErrElevationRequired || target == ErrDenied || target == agenttrust.ErrAgentTrust
}

// Details returns the Python SDK's details for this error,
// {"elevation_required": true, "approval_id": <id>}: the Details map of the
// embedded error.
func (e *ElevationRequiredError) Details() map[string]any { return e.AgentTrustError.Details }

// Format prints Error for every verb, %#v included.
func (e *ElevationRequiredError) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, e.Error()) }

// GoString is Error.
func (e *ElevationRequiredError) GoString() string { return e.Error() }

// newDeniedError builds the error for a denial of tool.
func newDeniedError(tool string, d Decision) *DeniedError {
	return &DeniedError{
		AgentTrustError: &agenttrust.AgentTrustError{Code: agenttrust.CodeActionDenied,
			Message: denialMessage(tool, d.Reason), Details: map[string]any{}},
		Tool: tool, Reason: d.Reason, CheckID: d.CheckID, GuardTier: d.GuardTier,
	}
}

// newElevationRequiredError builds the error for a denial of tool that asks
// for elevation.
func newElevationRequiredError(tool string, d Decision) *ElevationRequiredError {
	return &ElevationRequiredError{
		AgentTrustError: &agenttrust.AgentTrustError{Code: agenttrust.CodeElevationRequired,
			Message: denialMessage(tool, d.Reason),
			Details: map[string]any{"elevation_required": true, "approval_id": d.ApprovalID}},
		Tool: tool, Reason: d.Reason, CheckID: d.CheckID, GuardTier: d.GuardTier, ApprovalID: d.ApprovalID,
	}
}

// UnavailableError is returned by Check when the Guardian could not be
// reached or gave no usable answer and the Guard is
// fail-closed (the default). Unwrap returns the cause, so errors.As finds the
// SDK error of a 503 and errors.Is finds context.DeadlineExceeded for the
// guard's own timeout. It matches ErrGuardianUnavailable and
// agenttrust.ErrAgentTrust.
type UnavailableError struct {
	// Code is always agenttrust.CodeGuardianUnavailable ("GUARDIAN_UNAVAILABLE").
	Code string
	// Tool is the tool that was checked.
	Tool string
	// Cause is why the check could not be completed.
	Cause error
}

// Error names the tool and the cause. The cause's text comes from the SDK,
// which never includes keys or tokens.
func (e *UnavailableError) Error() string {
	s := "agenttrust: Guardian unavailable for tool " + quoteTool(e.Tool)
	if e.Cause != nil {
		s += ": " + e.Cause.Error()
	}
	return s + " (code " + e.Code + ")"
}

// Unwrap returns the cause.
func (e *UnavailableError) Unwrap() error { return e.Cause }

// Is reports whether target is ErrGuardianUnavailable or
// agenttrust.ErrAgentTrust.
func (e *UnavailableError) Is(target error) bool {
	return target == ErrGuardianUnavailable || target == agenttrust.ErrAgentTrust
}

// DeliveryError is returned by Flush and Close when some telemetry events
// could not be delivered. The events are counted as dropped in Stats.
type DeliveryError struct {
	// Undelivered is the number of events dropped.
	Undelivered int
	// Err is the context's error or the last send error; may be nil.
	Err error
}

// Error returns "agenttrust: telemetry: N events not delivered[: cause]".
func (e *DeliveryError) Error() string {
	s := "agenttrust: telemetry: " + strconv.Itoa(e.Undelivered) + " events not delivered"
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns Err.
func (e *DeliveryError) Unwrap() error { return e.Err }

// Is reports whether target is agenttrust.ErrAgentTrust.
func (e *DeliveryError) Is(target error) bool { return target == agenttrust.ErrAgentTrust }

func denialMessage(tool, reason string) string {
	s := "Tool " + quoteTool(tool) + " denied"
	if reason != "" {
		s += ": " + reason
	}
	return s
}

func quoteTool(tool string) string { return fmt.Sprintf("'%s'", tool) }

func validationErr(msg string) error {
	return agenttrust.NewError(agenttrust.CodeValidation, msg, nil)
}
