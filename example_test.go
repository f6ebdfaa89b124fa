package agenttrust_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"strings"

	agenttrust "github.com/agenttrustid/agenttrust-go"
	"github.com/agenttrustid/agenttrust-go/agenttrusttest"
)

// startFake starts the fake gateway the examples run against; a real program
// points the client at its gateway instead (or uses FromEnv).
func startFake() *agenttrusttest.Server {
	srv, err := agenttrusttest.NewServer()
	if err != nil {
		log.Fatal(err)
	}
	return srv
}

// A client registers an agent, gets a token for it and asks the Guardian
// before each tool call.
func Example() {
	srv := startFake()
	defer srv.Close()

	client, err := agenttrust.New(
		agenttrust.WithBaseURL(srv.URL()),
		agenttrust.WithAPIKey(srv.APIKey()),
	)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()

	agent, err := client.Agents.Create(ctx, agenttrust.AgentCreateParams{
		Name:         "billing-bot",
		Framework:    agenttrust.FrameworkLangChain,
		Capabilities: []string{"read_invoices"},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("agent:", agent.Name, agent.Status)

	tok, err := client.Tokens.Issue(ctx, agenttrust.TokenIssueParams{AgentID: agent.ID, Scopes: []string{"read_invoices"}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("token prefix:", tok.Token[:3], "ttl > 0:", tok.TTL() > 0)

	res, err := client.Actions.Check(ctx, agenttrust.ActionCheckParams{
		AgentID:          agent.ID,
		ToolName:         "read_invoice",
		ToolInputSummary: "invoice 2026-0042",
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("allowed:", res.Allowed)
	// Output:
	// agent: billing-bot active
	// token prefix: at_ ttl > 0: true
	// allowed: true
}

// A denial is a result, not an error; elevation comes with an approval id.
func ExampleActionsService_Check() {
	srv := startFake()
	defer srv.Close()
	srv.DenyTool("delete_file", "destructive tool")
	srv.RequireElevation("deploy")
	agentID := srv.CreateAgent("ops-bot")

	client, err := agenttrust.New(agenttrust.WithBaseURL(srv.URL()), agenttrust.WithAPIKey(srv.APIKey()))
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	for _, tool := range []string{"read_file", "delete_file", "deploy"} {
		res, err := client.Actions.Check(ctx, agenttrust.ActionCheckParams{AgentID: agentID, ToolName: tool, SessionID: "s1"})
		if err != nil {
			log.Fatal(err) // the check itself failed: network, 401, 5xx...
		}
		switch {
		case res.Allowed:
			fmt.Println(tool, "allowed")
		case res.ElevationRequired:
			fmt.Println(tool, "needs approval:", res.ApprovalID != "")
		default:
			fmt.Println(tool, "denied:", res.Reason)
		}
	}
	// Output:
	// read_file allowed
	// delete_file denied: destructive tool
	// deploy needs approval: true
}

// Issue caches tokens per agent, scope set, target and session: the second
// call is answered from memory.
func ExampleTokensService_Issue() {
	srv := startFake()
	defer srv.Close()
	agentID := srv.CreateAgent("reader", "read", "write")

	client, err := agenttrust.New(agenttrust.WithBaseURL(srv.URL()), agenttrust.WithAPIKey(srv.APIKey()))
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	a, _ := client.Tokens.Issue(ctx, agenttrust.TokenIssueParams{AgentID: agentID, Scopes: []string{"read", "write"}})
	b, _ := client.Tokens.Issue(ctx, agenttrust.TokenIssueParams{AgentID: agentID, Scopes: []string{"write", "read"}})
	fmt.Println("same token:", a.Token == b.Token)
	fmt.Println("issue requests:", len(srv.Requests()))
	fmt.Println(strings.Contains(fmt.Sprint(a), a.Token)) // printing a Token never shows it
	// Output:
	// same token: true
	// issue requests: 1
	// false
}

// Errors match sentinels with errors.Is and kind types with errors.As; every
// one is an *AgentTrustError underneath.
func ExampleAgentTrustError() {
	srv := startFake()
	defer srv.Close()
	client, err := agenttrust.New(agenttrust.WithBaseURL(srv.URL()), agenttrust.WithAPIKey(srv.APIKey()))
	if err != nil {
		log.Fatal(err)
	}

	_, err = client.Agents.Get(context.Background(), "no-such-agent")
	fmt.Println("not found:", errors.Is(err, agenttrust.ErrNotFound))
	var apiErr *agenttrust.AgentTrustError
	if errors.As(err, &apiErr) {
		fmt.Println("status:", apiErr.Status, "code:", apiErr.Code)
	}

	_, err = client.Agents.Get(context.Background(), "")
	var ve *agenttrust.ValidationError
	fmt.Println("rejected before I/O:", errors.As(err, &ve) && ve.Status == 0)
	// Output:
	// not found: true
	// status: 404 code: NOT_FOUND
	// rejected before I/O: true
}
