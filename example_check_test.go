package agenttrust_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	agenttrust "github.com/agenttrustid/agenttrust-go"
	"github.com/agenttrustid/agenttrust-go/agenttrusttest"
)

// WithRequestRetryUntilDeadline lets a check ride out a gateway restart: it
// keeps retrying within ctx's deadline, past the retry policy's MaxRetries.
// Here the Guardian answers 503 four times; with two retries the check would
// fail, with WithRequestRetryUntilDeadline it succeeds on the fifth attempt.
func ExampleWithRequestRetryUntilDeadline() {
	srv := startFake()
	defer srv.Close()
	agentID := srv.CreateAgent("ops-bot")
	srv.InjectFault("POST /api/v1/agenttrust/check", agenttrusttest.Fault{Status: 503, Times: 4})

	client, err := agenttrust.New(agenttrust.WithBaseURL(srv.URL()), agenttrust.WithAPIKey(srv.APIKey()),
		agenttrust.WithRetryPolicy(agenttrust.RetryPolicy{ // short backoffs keep the example quick
			MaxRetries: 2, InitialBackoff: 10 * time.Millisecond, MaxBackoff: 40 * time.Millisecond, MaxRetryAfter: time.Second,
		}))
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	res, err := client.Actions.Check(ctx, agenttrust.ActionCheckParams{AgentID: agentID, ToolName: "read_file"},
		agenttrust.WithRequestRetryUntilDeadline())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("allowed:", res.Allowed, "after", len(srv.Checks()), "accepted check and", len(srv.Requests()), "requests in all")
	// Output:
	// allowed: true after 1 accepted check and 5 requests in all
}

// Request options change one call: here an extra header, a tighter timeout
// than the client's, no retries, and the response metadata captured.
func ExampleRequestOption() {
	srv := startFake()
	defer srv.Close()
	agentID := srv.CreateAgent("ops-bot")
	client, err := agenttrust.New(agenttrust.WithBaseURL(srv.URL()), agenttrust.WithAPIKey(srv.APIKey()))
	if err != nil {
		log.Fatal(err)
	}
	var meta agenttrust.Response
	res, err := client.Actions.Check(context.Background(), agenttrust.ActionCheckParams{AgentID: agentID, ToolName: "read_file"},
		agenttrust.WithRequestHeader("X-Trace-Id", "trace-42"),
		agenttrust.WithRequestTimeout(2*time.Second),
		agenttrust.WithRequestMaxRetries(0),
		agenttrust.WithResponseInto(&meta))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("allowed:", res.Allowed, "status:", meta.StatusCode, "attempts:", meta.Attempts)

	// A header the SDK sets itself cannot be replaced: nothing is sent.
	_, err = client.Agents.Get(context.Background(), agentID, agenttrust.WithRequestHeader("X-API-Key", "other"))
	fmt.Println(errors.Is(err, agenttrust.ErrValidation))
	// Output:
	// allowed: true status: 200 attempts: 1
	// true
}
