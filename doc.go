// Package agenttrust is the Go client for the AgentTrust ID gateway:
// authentication, authorization and runtime security for AI agents.
//
// Agent code uses it to register agents, mint short-lived opaque "at_"
// tokens, ask the Guardian before every tool call and report what the tools
// did. Tool providers use it to introspect the tokens they receive. It is
// wire-compatible with the Python SDK agenttrustid 0.3.0 and mirrors it
// feature for feature; where the Python SDK is wrong, this package departs
// from it deliberately (see "Differences from the Python SDK" below).
//
// # Quick start
//
//	c, err := agenttrust.FromEnv() // AGENTTRUST_URL, AGENTTRUST_API_KEY, ...
//	if err != nil {
//		return err
//	}
//	agent, err := c.Agents.Create(ctx, agenttrust.AgentCreateParams{
//		Name:         "billing-bot",
//		Capabilities: []string{"read_invoices"},
//	})
//	...
//	res, err := c.Actions.Check(ctx, agenttrust.ActionCheckParams{
//		AgentID:  agent.ID,
//		ToolName: "read_invoice",
//	})
//	if err == nil && res.Allowed {
//		// run the tool
//	}
//
// Most agents should use the [github.com/agenttrustid/agenttrust-go/guard]
// package instead of calling Actions.Check and Telemetry.Report directly: it
// turns denials into typed errors, decides fail-open explicitly and sends
// telemetry in the background without ever blocking the agent.
//
// # Configuration
//
// [New] takes functional options ([WithBaseURL], [WithAPIKey],
// [WithTimeout], [WithHTTPClient], ...); [FromEnv] reads the AGENTTRUST_*
// variables and [FromConfig] a JSON file. Invalid settings fail at
// construction with a *ValidationError, never later. The gateway, auth
// (tokens, action checks) and audit (telemetry) services may live at three
// URLs; unset auth and audit URLs are derived from the base URL (port 8081
// becomes 8082 and 8084; any other URL is used as is).
//
// # Errors
//
// Every error the package returns matches [ErrAgentTrust] with errors.Is,
// and errors.As with *[AgentTrustError] gives the status, the Python SDK's
// code (AUTH_FAILED, NOT_FOUND, HTTP_500, NETWORK_ERROR, ...), the message,
// the details, the raw body and the request id. Kinds can be selected with
// sentinels ([ErrValidation], [ErrAuthentication], [ErrAuthorization],
// [ErrNotFound], [ErrRateLimited], [ErrNetwork], [ErrDecode], [ErrJSONRPC])
// or with the kind types (*[ValidationError], *[NetworkError], ...). A
// network error wraps its cause, so errors.Is(err, context.DeadlineExceeded)
// and errors.Is(err, context.Canceled) work. Policy denials are not errors:
// Actions.Check returns Allowed false.
//
// Errors, logs and fmt output never contain the API key or a token.
//
// # Retries and timeouts
//
// Requests that are safe to repeat (GET, DELETE, token introspection,
// action checks) are retried after transport failures and after 429, 502,
// 503 and 504, with exponential backoff, jitter and Retry-After honoured up
// to a cap ([DefaultRetryPolicy]: two retries). Other requests (creating
// agents, issuing and revoking tokens, telemetry) are re-sent only when the
// connection failed before anything was written. The client timeout (30 s by
// default) bounds each call including its retries; the caller's context can
// shorten it. No wait runs into that deadline: a Retry-After that does not
// fit in what is left returns the answer at once (a *RateLimitError for a
// 429, with its RetryAfter), and a backoff is cut to half of what is left.
// [WithRequestRetryUntilDeadline] (used by the guard) retries a check
// until its deadline instead of stopping after two retries. Redirects are
// never followed.
//
// # Request options
//
// Every method that talks to the gateway takes request options last
// (opts ...[RequestOption]); they change that call only and win over the
// client's options: [WithRequestHeader], [WithRequestTimeout],
// [WithRequestRetryPolicy], [WithRequestMaxRetries],
// [WithRequestRetryUntilDeadline], and [WithResponseInto] for the status,
// header, request id and attempt count of a successful call. An invalid
// value is a VALIDATION_ERROR before anything is sent.
//
// # Token cache
//
// Tokens.Issue reuses a cached token for the same agent, scope set, target
// and session while more than 30 seconds of it remain. Concurrent misses for
// one key share one request, every caller receives its own copy, the cache is
// bounded, and Tokens.Revoke, Agents.Revoke and SetAPIKey evict.
//
// An agent presenting its token to a tool provider uses a [TokenSource]
// (Tokens.NewSource) over the same cache: its Transport puts
// "Authorization: Bearer <token>" on every request of an http.Client, and a
// cache hit allocates nothing.
//
// # Tool providers
//
// Services that receive an agent's token protect their handlers with the
// [github.com/agenttrustid/agenttrust-go/tokenauth] package: its
// RequireToken middleware introspects the bearer token with this package's
// Client (with a target and required scopes), answers 400, 401, 403 or 503
// as RFC 6750 says, and puts the [IntrospectionResult] in the request
// context. The integrations/mcp module adapts the same verifier to the
// official MCP Go SDK.
//
// # Agent identity
//
// Agents.Create gives every agent an Ed25519 key pair, generated locally
// when no public key is passed; the private key never leaves the process and
// can go straight into a [KeyStore]. [WIMSEService.IssueTokenWithProof]
// obtains a WIMSE workload token by signing a challenge, and [DPoPKey] mints
// DPoP proofs. [AgentCredentials], installed with
// [Client.UseAgentCredentials], make every Actions.Check sender-constrained:
// a cached WIMSE token and a fresh proof for each attempt.
//
// # Concurrency
//
// A Client is safe for concurrent use and should be shared: it owns the
// connection pool (sized for many concurrent agents, with keep-alive) and
// the token cache.
//
// # Testing
//
// The [github.com/agenttrustid/agenttrust-go/agenttrusttest] package is an
// in-memory fake gateway on loopback: stateful, strict about the wire format,
// with request recording, scripted policies, fault injection and a settable
// clock. Point a Client at its URL to test agent code without a gateway.
//
// # Differences from the Python SDK
//
// Each difference is listed, with what Go does, what Python does and why, in
// [docs/python-differences.md]. The ones a user notices: path parameters are escaped and empty
// IDs are rejected before any I/O; redirects are not followed, so the API
// key never leaves for another host; every transport failure is a
// NETWORK_ERROR with its cause (Python leaked raw exceptions, which defeated
// its fail-open); a JSON-RPC error in an A2A or MCP reply is a typed error
// (Python turned it into an empty "pending" task); a list reply of an
// unexpected shape is an error, not a silent empty list; the token cache
// key is unambiguous, the cache is concurrency-safe and bounded; safe
// requests are retried; input summaries are cut by runes, never bytes.
//
// [docs/python-differences.md]: https://github.com/agenttrustid/agenttrust-go/blob/main/docs/python-differences.md
package agenttrust
