package agenttrust_test

import (
	"context"
	"fmt"
	"log"

	agenttrust "github.com/agenttrustid/agenttrust-go"
)

// A program that makes a Client for a short job closes it when the job is
// done, so that its idle connections do not outlive the job. A long-lived
// program keeps one Client instead.
func ExampleClient_Close() {
	srv := startFake()
	defer srv.Close()

	client, err := agenttrust.New(agenttrust.WithBaseURL(srv.URL()), agenttrust.WithAPIKey(srv.APIKey()))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	health, err := client.Health(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("gateway status:", health["status"])
	// Output: gateway status: ok
}
