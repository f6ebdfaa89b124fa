// Package agenttrusttest is a simplified, in-memory fake of the AgentTrust
// ID gateway for tests and local development, in the spirit of pstest for
// Pub/Sub and stripe-mock for Stripe.
//
// NewServer starts it on loopback; a client under test is pointed at
// [Server.URL] (and [Server.AuthURL] and [Server.AuditURL]) and runs its
// real HTTP code path:
//
//	srv := agenttrusttest.NewTestServer(t)
//	agentID := srv.CreateAgent("billing-bot", "read_invoices")
//	srv.DenyTool("delete_file", "destructive tool")
//	// ... point the SDK at srv.URL() with srv.APIKey() and call it ...
//	checks := srv.Checks()
//
// # What it is faithful to
//
// The gateway's wire contract as the SDKs use it: every endpoint path and
// method, the request keys and their omission rules, the reply shapes and
// the error statuses, with bodies of the form {"error": "<message>"} and an
// X-Request-ID header on every response.
//
// The fake is strict so that it catches a client drifting from the spec:
//
//   - A request body with a missing "always" key, a key of the wrong JSON
//     type, a null where a value is required or an unknown key is a 400 whose
//     message names the key: `missing required key "name"`, `unknown key
//     "foo"`, `key "ttl" must be an integer`. Nested keys are named by path
//     (`events[0].timestamp`, `params.task_id`).
//   - Keys sent only when "truthy" must not be sent empty (`"org_id": ""` is a
//     400), and a few literal values are enforced: action_source "api",
//     jsonrpc "2.0", action_input_summary at most 200 code points, telemetry
//     timestamps in RFC 3339, introspect target a string or null (never "").
//   - Bodiless endpoints (GET, DELETE and the bodiless POST/PUT calls) accept
//     only an empty body; a POST or PUT with a body needs Content-Type
//     application/json (415 otherwise); GET and DELETE need no Content-Type.
//   - A wrong method is a 405 with an Allow header, an unknown path a 404, an
//     unknown query parameter a 400. Path parameters are routed on the escaped
//     path segment by segment, so "a%2Fb" is one id.
//   - Every request without a valid X-API-Key is a 401, except GET /health
//     and the public card GET /a2a/agents/{agent_id}/agent.json. Header names
//     match case-insensitively.
//
// State is real and shared by all listeners: agents (duplicate names in an
// org are a 409), tokens ("at_" plus 32 random bytes in base64url; TTL
// against the server clock; scopes limited to the agent's capabilities),
// action checks with a test-controlled [Policy] and approvals, telemetry,
// sessions, agent cards, A2A tasks, MCP servers with a real proxy, delegations
// with scope narrowing, federation providers and tokens, and SIEM
// destinations whose test endpoint really POSTs to the destination.
//
// # Where it diverges from production
//
//   - Timing: answers are immediate; latency_ms is always 1, guard_tier always
//     "fast", confidence always 0.99. Timestamps are RFC 3339 UTC with whole
//     seconds. The clock is [Server.Now], which tests move with
//     [Server.Advance] or replace with [Server.SetClock].
//   - Policy: a fixed rule set by tool name (deny list, elevation list, allow
//     by default) instead of the guardian's classifier; action_effect is only
//     recorded.
//   - Tenancy: each API key belongs to an org, and an agent's org is the
//     create body's org_id or else the key's org. Lists are filtered by the
//     caller's org (agents by the org_id query when given), but lookups by id
//     work across orgs: the fake does not isolate tenants.
//   - Token targets: tokens.issue sends no target, so tokens are not bound to
//     one. Instead an agent created with metadata {"allowed_targets": [...]}
//     accepts only those targets at introspection ("target mismatch"
//     otherwise); agents without that key accept any target.
//   - Approvals are scoped to (agent, session, tool). While one is pending,
//     later checks return the same approval id; once approved, checks of that
//     tool in that session are allowed; once denied, they are denied with
//     "approval denied". Approvals never expire.
//   - A2A: tasks/send creates a "pending" task and nothing completes it;
//     message/send completes at once, echoing the text ("echo: <text>") as
//     reply message and artifact. Unknown tasks answer A2A's -32001, unknown
//     methods -32601, bad params -32602, all in a 200; a malformed envelope
//     is an HTTP 400.
//   - MCP sessions need an active agent but any server_id. call_tool needs an
//     active agent in X-Agent-ID (403 otherwise) and forwards the body to the
//     registered URL with a 10 s timeout, returning the upstream status and
//     body unchanged (502 when unreachable).
//   - Federation: external ID tokens are not validated against any JWKS; only
//     tokens added with [Server.AddFederatedToken], and ID tokens the fake
//     issued itself (EdDSA JWTs with the gateway URL as issuer), are known.
//     sessions/init needs a registered provider for the token's issuer.
//   - Agent cards are built from the agent on every read; published cards
//     carry a signature by a key generated at start, which nothing verifies.
//     The trust score is metadata "trust_score" when numeric, else 0.9 (0
//     for a revoked agent).
//   - Nothing is persisted and there is no paging or rate limiting. An empty
//     SIEM update (Python's update without fields) is a no-op.
//   - Agent identity is verified for real, with these simplifications. An
//     agent's public_key, when sent, must be an Ed25519 PKIX PEM (400
//     otherwise); agents created without one still work but cannot pass a
//     proof of possession. Security settings ([SecuritySettings]) are one set
//     for all organisations, and any valid API key may read or change them.
//     Challenge nonces are single use (a failed proof spends its nonce) and
//     live [ChallengeTTL]; the proof ts and the DPoP iat must lie within
//     [ProofWindow] of [Server.Now]; the clocks are not otherwise skewed.
//     WIMSE tokens are EdDSA JWTs signed by a key generated at start
//     ([Server.WIMSESigningKey]), last [DefaultWIMSETTL] unless ttl_seconds
//     says otherwise, and carry cnf.jkt whenever the agent has a key, with or
//     without a proof. Action checks verify credentials when the settings
//     require sender-constrained tokens and whenever a client sends an
//     Authorization or DPoP header anyway; a WIMSE token of another agent
//     than the check's agent_id is refused. The DPoP htu must equal the URL
//     of the listener that received the check plus its path, byte for byte,
//     so a client must use [Server.AuthURL] as given (127.0.0.1, not
//     localhost). Seen jti values are remembered for the server's lifetime.
//     A DPoP header, or one of the fake's WIMSE tokens as a bearer token, on
//     any other endpoint is a 400.
//     Every failed proof or token is a 401 whose message says what failed and
//     never echoes the credential; malformed bodies are 400s and unknown or
//     revoked agents 404 and 403 as elsewhere. wimse/verify answers 200 with
//     valid false and a reason for any bad token.
//
// # Testing helpers
//
// [Server.Requests] returns the requests as they arrived (escaped path, raw
// query, headers and raw body bytes; the most recent 10000, see
// [WithRequestLogLimit]; a request refused for its API key is logged
// without its body, which is never read), [Server.Checks] and
// [Server.TelemetryBatches] the accepted bodies. [Server.WIMSETokens],
// [Server.PoPProofs], [Server.DPoPProofs] and [Server.IdentityRejections]
// show the identity traffic, each refusal with a [RejectionReason];
// [Server.RevokeWIMSEToken] revokes a token early and
// [Server.SetSecuritySettings] turns the requirements on. [Server.InjectFault]
// makes an endpoint answer a status (with Retry-After), add latency, drop
// the connection or answer malformed JSON. [WithSplitListeners] serves the
// auth and audit APIs on listeners of their own. The command
// cmd/agenttrust-devserver runs the fake as a standalone process for SDKs
// in any language.
package agenttrusttest
