// Package guard checks an agent's tool calls with the AgentTrust Guardian
// before they run and reports what they did afterwards.
//
// A Guard is created per agent run and shared by every tool of that run:
//
//	g, err := guard.New(client, agentID)
//	if err != nil { ... }
//	defer g.Close(ctx)
//
//	d, err := g.Check(ctx, "delete_file", guard.LengthSummary(input), guard.WithEffect(guard.EffectDestructive))
//	if err != nil || !d.Allowed {
//		return err // *DeniedError, *ElevationRequiredError, *UnavailableError, ctx's error, or an API error
//	}
//	start := time.Now()
//	out, err := deleteFile(input)
//	if err != nil {
//		g.Report(guard.ToolError("delete_file", time.Since(start), err))
//	} else {
//		g.Report(guard.ToolEnd("delete_file", time.Since(start)))
//	}
//
// # Checks and fail-open
//
// Check never waits for an approval: an elevation comes back at once as an
// *ElevationRequiredError (see WaitForApproval). With WithFailOpen, a check
// that fails because the Guardian is unavailable (no HTTP response, the
// check timeout, 5xx, 429 or a malformed answer) is allowed and marked
// FailedOpen; every other failure (400, 401, 403, 404, validation, the
// caller's own cancellation) is returned as an error and never allowed.
// Within the check timeout (3 s), a check that got no answer, or a 502, 503,
// 504 or a 429 whose Retry-After fits, is retried with backoff until the
// timeout, so a gateway restart shorter than that costs no failed check. The
// decision is the reply's "allowed" alone: a reply field of the wrong type
// is ignored (and logged by the client) and never turns a denial into an
// allow.
//
// # Telemetry
//
// Report never blocks and does no network I/O: one background goroutine per
// Guard, started by the first Report, sends batches of 10 events, or what is
// pending every 5 s, retries batches that fail because the gateway is
// unavailable, and drops (and counts) events when its bounded queue is full.
// Flush waits for delivery; Close drains within its context and stops the
// goroutine. Stats tells what happened: Reported = Sent + Dropped + Pending.
//
// Only the tool name, the event type, the duration, a success flag and the
// error's Go type are sent: never the tool's input, output or error text.
package guard
