package agenttrust

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"time"
)

// AgentStatus is an agent's lifecycle state. It is an open set: values the
// SDK does not know are kept as received.
type AgentStatus string

// Known agent statuses.
const (
	AgentStatusActive    AgentStatus = "active"
	AgentStatusSuspended AgentStatus = "suspended"
	AgentStatusRevoked   AgentStatus = "revoked"
)

// Framework names the framework an agent is built with. It is a hint the
// gateway does not validate: any value is sent, and values the SDK does not
// know are kept as received.
type Framework string

// Known frameworks.
const (
	FrameworkOpenAI    Framework = "openai"
	FrameworkAnthropic Framework = "anthropic"
	FrameworkLangChain Framework = "langchain"
	FrameworkCrewAI    Framework = "crewai"
	FrameworkAutoGen   Framework = "autogen"
	FrameworkCustom    Framework = "custom"
)

// ActionEffect hints how an action changes the world; when omitted the
// backend classifies the action by name. Not validated.
type ActionEffect string

// Known action effects.
const (
	EffectRead        ActionEffect = "read"
	EffectMutating    ActionEffect = "mutating"
	EffectDestructive ActionEffect = "destructive"
	EffectAdmin       ActionEffect = "admin"
)

// EventType is the kind of a telemetry event. The gateway knows only the
// three below; the guard's reporter drops events of any other type, while
// Telemetry.Report sends what it is given.
type EventType string

// The telemetry event types.
const (
	EventToolStart EventType = "tool_start"
	EventToolEnd   EventType = "tool_end"
	EventToolError EventType = "tool_error"
)

// ApprovalStatus is the state of an elevation approval. Values the SDK does
// not know are kept as received.
type ApprovalStatus string

// Known approval statuses.
const (
	ApprovalPending  ApprovalStatus = "pending"
	ApprovalApproved ApprovalStatus = "approved"
	ApprovalDenied   ApprovalStatus = "denied"
)

// SessionMode is what a session may do. Values the SDK does not know are
// kept as received.
type SessionMode string

// Known session modes.
const (
	SessionModeReadOnly SessionMode = "read_only"
	SessionModeElevated SessionMode = "elevated"
)

// SessionSource is the protocol a session was opened through. Values the SDK
// does not know are kept as received.
type SessionSource string

// Known session sources.
const (
	SessionSourceMCP        SessionSource = "mcp"
	SessionSourceAPI        SessionSource = "api"
	SessionSourceA2A        SessionSource = "a2a"
	SessionSourceFederation SessionSource = "federation"
)

// Agent is a registered agent. Printing or logging it never
// reveals PrivateKey.
type Agent struct {
	ID           string         `json:"id"`
	Name         string         `json:"name"`
	OrgID        string         `json:"org_id"`
	Framework    Framework      `json:"framework"` // "custom" when absent
	PublicKey    string         `json:"public_key"`
	Status       AgentStatus    `json:"status"` // "active" when absent
	Capabilities []string       `json:"capabilities"`
	Metadata     map[string]any `json:"metadata"`
	CreatedAt    time.Time      `json:"created_at"`
	PrivateKey   string         `json:"private_key"`
}

// UnmarshalJSON applies the defaults (framework "custom", status "active")
// and reads timestamps leniently.
func (a *Agent) UnmarshalJSON(b []byte) error {
	*a = Agent{Framework: FrameworkCustom, Status: AgentStatusActive}
	return unmarshalModel(b, a)
}

// String describes the agent without its private key.
func (a Agent) String() string {
	return joinFields("Agent", "ID", strconv.Quote(a.ID), "Name", strconv.Quote(a.Name), "OrgID", strconv.Quote(a.OrgID),
		"Framework", strconv.Quote(string(a.Framework)), "Status", strconv.Quote(string(a.Status)),
		"Capabilities", fmt.Sprintf("%q", a.Capabilities), "Metadata", fmt.Sprint(a.Metadata),
		"PublicKey", strconv.Quote(a.PublicKey), "PrivateKey", redactedSecret(a.PrivateKey),
		"CreatedAt", a.CreatedAt.Format(time.RFC3339))
}

// GoString is String, so that %#v hides the private key too.
func (a Agent) GoString() string { return a.String() }

// Format prints String for every verb, so that no verb (%d, %x, ...) can
// dump the private key.
func (a Agent) Format(f fmt.State, verb rune) { formatRedacted(f, verb, a, a) }

// LogValue hides the private key from log/slog.
func (a Agent) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", a.ID), slog.String("name", a.Name), slog.String("org_id", a.OrgID),
		slog.String("framework", string(a.Framework)), slog.String("status", string(a.Status)),
		slog.Any("capabilities", a.Capabilities), secretAttr("private_key", a.PrivateKey != ""),
		slog.Time("created_at", a.CreatedAt))
}

// Token is an issued agent token. Its String, Format and LogValue methods
// hide the token, so printing or logging a Token (or a *Token) never leaks
// it.
type Token struct {
	Token     string    `json:"token"` // opaque, "at_…"
	AgentID   string    `json:"agent_id"`
	Scopes    []string  `json:"scopes"`
	Audience  []string  `json:"audience"`
	IssuedAt  time.Time `json:"issued_at"` // now, by the issuing client's clock, when absent
	ExpiresAt time.Time `json:"expires_at"`
	TokenID   string    `json:"token_id"`

	now func() time.Time // the clock of the client that issued it; nil: time.Now
}

// UnmarshalJSON reads the alternate keys agent_token, scope and id.
func (t *Token) UnmarshalJSON(b []byte) error {
	var w struct {
		Token      *string         `json:"token"`
		AgentToken *string         `json:"agent_token"`
		AgentID    string          `json:"agent_id"`
		Scopes     *[]string       `json:"scopes"`
		Scope      []string        `json:"scope"`
		Audience   []string        `json:"audience"`
		IssuedAt   json.RawMessage `json:"issued_at"`
		ExpiresAt  lenientTime     `json:"expires_at"`
		TokenID    *string         `json:"token_id"`
		ID         string          `json:"id"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	// The clock survives the reset: Tokens.Issue decodes into a Token that
	// already carries its client's clock, which then dates a missing
	// issued_at; a plain json.Unmarshal uses time.Now.
	*t = Token{AgentID: w.AgentID, Audience: w.Audience, ExpiresAt: w.ExpiresAt.Time, now: t.now}
	t.Token = firstOr(w.Token, w.AgentToken)
	t.TokenID = firstOr(w.TokenID, &w.ID)
	if w.Scopes != nil {
		t.Scopes = *w.Scopes
	} else {
		t.Scopes = w.Scope
	}
	switch s := string(w.IssuedAt); s {
	case "", "null", `""`:
		t.IssuedAt = t.clock().UTC()
	default:
		var it lenientTime
		_ = it.UnmarshalJSON(w.IssuedAt)
		t.IssuedAt = it.Time
	}
	return nil
}

func firstOr(a, b *string) string {
	if a != nil {
		return *a
	}
	if b != nil {
		return *b
	}
	return ""
}

func (t *Token) clock() time.Time {
	if t.now != nil {
		return t.now()
	}
	return time.Now()
}

// IsExpired reports whether now is strictly after ExpiresAt. A token with an
// unknown expiry (zero ExpiresAt) is not expired.
func (t *Token) IsExpired() bool {
	return !t.ExpiresAt.IsZero() && t.clock().After(t.ExpiresAt)
}

// TTL returns the whole seconds left until ExpiresAt, truncated toward zero
// and floored at 0; 0 for an unknown expiry.
func (t *Token) TTL() time.Duration {
	if t.ExpiresAt.IsZero() {
		return 0
	}
	d := t.ExpiresAt.Sub(t.clock()).Truncate(time.Second)
	if d < 0 {
		return 0
	}
	return d
}

// String describes the token without revealing it.
func (t Token) String() string {
	return "agenttrust.Token{id: " + strconv.Quote(t.TokenID) + ", agent: " + strconv.Quote(t.AgentID) +
		", token: " + redactedToken(t.Token) + ", expires: " + t.ExpiresAt.Format(time.RFC3339) + "}"
}

// GoString is String, so that %#v does not reveal the token either.
func (t Token) GoString() string { return t.String() }

// Format prints String for every verb, so that no verb (%d, %x, ...) can
// dump the token field.
func (t Token) Format(f fmt.State, verb rune) { formatRedacted(f, verb, t, t) }

// LogValue hides the token from log/slog; the JSON handler would otherwise
// print every exported field.
func (t Token) LogValue() slog.Value {
	return slog.GroupValue(slog.String("token_id", t.TokenID), slog.String("agent_id", t.AgentID),
		slog.String("token", redactedToken(t.Token)), slog.Any("scopes", t.Scopes),
		slog.Time("expires_at", t.ExpiresAt))
}

// redactedToken keeps only a token's prefix ("at_") for diagnostics.
func redactedToken(s string) string {
	if s == "" {
		return `""`
	}
	if len(s) > 3 && s[2] == '_' {
		return s[:3] + "[redacted]"
	}
	return "[redacted]"
}

// IntrospectionResult is the answer of Tokens.Introspect. An
// inactive token is a result with Active false, not an error.
type IntrospectionResult struct {
	Active    bool      `json:"active"`
	AgentID   string    `json:"agent_id"`
	OrgID     string    `json:"org_id"`
	Scopes    []string  `json:"scopes"`
	ExpiresAt time.Time `json:"expires_at"`
	Reasoning string    `json:"reasoning"` // why the token is inactive
}

// VerificationResult is the deprecated name of IntrospectionResult.
//
// Deprecated: use IntrospectionResult.
type VerificationResult = IntrospectionResult

// UnmarshalJSON reads timestamps leniently.
func (r *IntrospectionResult) UnmarshalJSON(b []byte) error {
	*r = IntrospectionResult{}
	return unmarshalModel(b, r)
}

// ActionCheckResult is the Guardian's decision. A denial is a
// result with Allowed false, not an error.
type ActionCheckResult struct {
	Allowed           bool     `json:"allowed"` // false when absent
	CheckID           string   `json:"check_id"`
	Confidence        *float64 `json:"confidence"`
	GuardTier         string   `json:"guard_tier"`
	LatencyMs         *int     `json:"latency_ms"`
	Reason            string   `json:"reason"`
	ElevationRequired bool     `json:"elevation_required"`
	ApprovalID        string   `json:"approval_id"`

	decided bool // the reply carried a JSON boolean "allowed"
}

// Decided reports whether the reply carried an explicit boolean "allowed".
// A reply without one reads as a denial (as in the Python SDK), which is
// safe but cannot be told from a real denial by Allowed alone. Code that
// acts on a check itself, as the guard does, needs Decided to treat such a
// reply as a malformed answer (for instance to fail open or closed on it)
// rather than as the Guardian's verdict.
func (r *ActionCheckResult) Decided() bool { return r.decided }

// UnmarshalJSON decodes a check reply as Actions.Check does: "allowed"
// strictly (present but not a JSON boolean is an error; absent or null is a
// denial with Decided false), every other field leniently (a wrong type
// leaves the zero value).
func (r *ActionCheckResult) UnmarshalJSON(b []byte) error {
	res, _, err := decodeCheckResult(b)
	if err != nil {
		return err
	}
	*r = *res
	return nil
}

// Session is an MCP, API, A2A or federation session.
type Session struct {
	SessionID      string        `json:"session_id"`
	AgentID        string        `json:"agent_id"`
	OrgID          string        `json:"org_id"`
	Source         SessionSource `json:"source"`
	ServerID       string        `json:"server_id"`
	DelegationID   string        `json:"delegation_id"`
	ProviderID     string        `json:"provider_id"`
	Issuer         string        `json:"issuer"`
	TrustLevel     string        `json:"trust_level"`
	Mode           SessionMode   `json:"mode"`
	AllowedActions []string      `json:"allowed_actions"`
	ScopeCeiling   []string      `json:"scope_ceiling"`
	TotalCalls     int           `json:"total_calls"`
	ReadCalls      int           `json:"read_calls"`
	WriteCalls     int           `json:"write_calls"`
	DeniedCalls    int           `json:"denied_calls"`
	CreatedAt      time.Time     `json:"created_at"`
	LastActivityAt time.Time     `json:"last_activity_at"`
}

// UnmarshalJSON reads timestamps leniently.
func (s *Session) UnmarshalJSON(b []byte) error {
	*s = Session{}
	return unmarshalModel(b, s)
}

// ApprovalRequest is an elevation approval.
type ApprovalRequest struct {
	ID           string         `json:"id"`
	SessionID    string         `json:"session_id"`
	AgentID      string         `json:"agent_id"`
	OrgID        string         `json:"org_id"`
	ActionName   string         `json:"action_name"`
	ActionEffect ActionEffect   `json:"action_effect"`
	Status       ApprovalStatus `json:"status"` // "pending" when absent
	CreatedAt    time.Time      `json:"created_at"`
	ExpiresAt    time.Time      `json:"expires_at"`
	DecidedBy    string         `json:"decided_by"`
}

// UnmarshalJSON applies the "pending" default and lenient timestamps.
func (a *ApprovalRequest) UnmarshalJSON(b []byte) error {
	*a = ApprovalRequest{Status: ApprovalPending}
	return unmarshalModel(b, a)
}

// OrganizationTier is an organization's plan. Values the SDK does not know
// are kept as received.
type OrganizationTier string

// Known organization tiers.
const (
	TierFree       OrganizationTier = "free"
	TierPro        OrganizationTier = "pro"
	TierEnterprise OrganizationTier = "enterprise"
)

// Organization is defined for completeness; no API returns it.
type Organization struct {
	ID        string           `json:"id"`
	Name      string           `json:"name"`
	Tier      OrganizationTier `json:"tier"` // "free" when absent
	Settings  map[string]any   `json:"settings"`
	CreatedAt time.Time        `json:"created_at"`
}

// UnmarshalJSON applies the "free" default and lenient timestamps.
func (o *Organization) UnmarshalJSON(b []byte) error {
	*o = Organization{Tier: TierFree}
	return unmarshalModel(b, o)
}
