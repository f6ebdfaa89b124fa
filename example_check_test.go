package agenttrust_test

import (
	"context"
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
