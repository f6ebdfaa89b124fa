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
// Guard, started by the first Report, sends the events in the order they were
// reported, one request at a time. A quiet agent's events go out in batches
// of 10 (WithBatchSize), and whatever is pending every 5 s
// (WithFlushInterval). When more are waiting (a busy agent, a slow link), one
// request carries as many whole batches as wait, up to 500 events (or one
// batch, when BatchSize is larger), so that a Guard keeps up with thousands of events per second even when each request
// takes 50 ms. A batch that fails because the gateway is unavailable is put
// back at the head of the queue and retried, after a backoff of 1 s doubling
// up to the flush interval, at most 3 times in all (WithSendAttempts); other
// failures (400, 401, 403, ...) drop it at once. The events waiting to be
// sent are bounded (1000, WithQueueCapacity), besides the request in flight:
// when the queue is full, new events are dropped, and a failed batch that
// comes back to a full queue pushes out the newest. The queue absorbs what
// arrives while the gateway is slow or down; an agent that reports thousands
// of events per second should raise it to cover the pauses it must ride out.
// Nothing is lost silently: Stats counts every event, and at every moment
// Reported = Sent + Dropped + Pending.
//
// Flush waits until the events reported before it are sent or dropped. Its
// *DeliveryError, like Close's, counts only those of its own events it could
// not deliver; Stats().Dropped counts every drop since New, including queue
// overflows and batches given up before the call.
//
// # Closing
//
// Close stops intake, sends what is pending (retrying as above) and stops the
// goroutine; give it a deadline. Against a gateway that accepts connections
// but never answers, each request waits for its send timeout (10 s,
// WithSendTimeout) and each batch is tried 3 times with backoffs in between,
// so with the default options a Close without a deadline can take more than
// a minute (two requests of 500 events, about 35 s each). A few seconds are
// enough for a healthy gateway:
//
//	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
//	defer cancel()
//	if err := g.Close(ctx); err != nil {
//		log.Print(err) // a *DeliveryError: what the drain could not deliver
//	}
//	log.Printf("telemetry: %+v", g.Stats()) // every drop, Close's included
//
// When the deadline passes, the request in flight is cancelled and what is
// still pending is dropped. The *DeliveryError's Err is then the deadline's
// error; when every event the drain lost was lost to a failed send (the
// gateway refused it, or it failed its last attempt), Err is the last send
// error. Either way no goroutine of the Guard's reporter runs once Close
// has returned.
//
// Only the tool name, the event type, the duration, a success flag and the
// error's Go type are sent: never the tool's input, output or error text.
package guard
