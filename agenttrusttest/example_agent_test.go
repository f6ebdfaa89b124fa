package agenttrusttest_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	agenttrust "github.com/agenttrustid/agenttrust-go"
	"github.com/agenttrustid/agenttrust-go/agenttrusttest"
	"github.com/agenttrustid/agenttrust-go/guard"
)

// cleanUp is agent code under test: it asks the Guardian before each tool
// and skips the tools it denies.
func cleanUp(ctx context.Context, g *guard.Guard, files []string) (deleted int, err error) {
	for _, f := range files {
		_, err := g.Check(ctx, "delete_file", guard.LengthSummary(f), guard.WithEffect(guard.EffectDestructive))
		var denied *guard.DeniedError
		switch {
		case errors.As(err, &denied):
			return deleted, fmt.Errorf("stopped: %s", denied.Reason)
		case err != nil:
			return deleted, err
		}
		deleted++ // the real tool would run here
		g.Report(guard.ToolEnd("delete_file", time.Millisecond))
	}
	return deleted, nil
}

// Testing agent code: run it against the fake gateway with the real SDK,
// script the policy, and inspect what the gateway received. In a test, use
// agenttrusttest.NewTestServer(t), which also closes the server.
func Example_testingAgentCode() {
	srv, err := agenttrusttest.NewServer()
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	client, err := agenttrust.New(agenttrust.WithBaseURL(srv.URL()), agenttrust.WithAPIKey(srv.APIKey()))
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	agentID := srv.CreateAgent("janitor", "files:write")
	g, err := guard.New(client, agentID)
	if err != nil {
		panic(err)
	}

	// Allowed by default: both files are deleted and reported.
	n, err := cleanUp(ctx, g, []string{"/tmp/a", "/tmp/b"})
	fmt.Println(n, err)

	// Scripted policy: the Guardian now denies the tool.
	srv.DenyTool("delete_file", "outside maintenance window")
	n, err = cleanUp(ctx, g, []string{"/tmp/c"})
	fmt.Println(n, err)

	// What the gateway saw: the checks, with only the input's length, and
	// after Close the telemetry.
	if err := g.Close(ctx); err != nil {
		panic(err)
	}
	checks := srv.Checks()
	fmt.Println(len(checks), checks[0].ActionInputSummary, checks[0].ActionEffect)
	fmt.Println(len(srv.TelemetryEvents()), srv.TelemetryEvents()[0].EventType)
	// Output:
	// 2 <nil>
	// 0 stopped: outside maintenance window
	// 3 [6 chars] destructive
	// 2 tool_end
}
