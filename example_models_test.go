package agenttrust_test

import (
	"context"
	"fmt"
	"log"

	agenttrust "github.com/agenttrustid/agenttrust-go"
)

// Enumerations are named string types with constants for the values the SDK
// knows; any other value is sent and read back as it is.
func ExampleFramework() {
	srv := startFake()
	defer srv.Close()
	client, err := agenttrust.New(agenttrust.WithBaseURL(srv.URL()), agenttrust.WithAPIKey(srv.APIKey()))
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	for _, fw := range []agenttrust.Framework{agenttrust.FrameworkCrewAI, "in-house", ""} {
		agent, err := client.Agents.Create(ctx, agenttrust.AgentCreateParams{Name: "bot-" + string(fw), Framework: fw})
		if err != nil {
			log.Fatal(err)
		}
		switch agent.Framework {
		case agenttrust.FrameworkCrewAI, agenttrust.FrameworkCustom:
			fmt.Println("known:", agent.Framework)
		default:
			fmt.Println("passed through:", agent.Framework)
		}
	}
	// Output:
	// known: crewai
	// passed through: in-house
	// known: custom
}
