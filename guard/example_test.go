package guard_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	agenttrust "github.com/agenttrustid/agenttrust-go"
	"github.com/agenttrustid/agenttrust-go/agenttrusttest"
	"github.com/agenttrustid/agenttrust-go/guard"
)

// Check a tool before running it, run it only when allowed, and report what
// it did. The fake gateway stands in for a real one.
func Example() {
	srv, err := agenttrusttest.NewServer()
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	srv.DenyTool("delete_file", "destructive tools are not allowed")
	agentID := srv.CreateAgent("example-agent")
	client, err := agenttrust.New(agenttrust.WithBaseURL(srv.URL()), agenttrust.WithAPIKey(srv.APIKey()))
	if err != nil {
		panic(err)
	}

	ctx := context.Background()
	g, err := guard.New(client, agentID)
	if err != nil {
		panic(err)
	}
	defer g.Close(ctx)

	d, err := g.Check(ctx, "read_file", guard.LengthSummary("/etc/hosts"), guard.WithEffect(guard.EffectRead))
	if err == nil && d.Allowed {
		start := time.Now()
		// ... run the tool ...
		g.Report(guard.ToolEnd("read_file", time.Since(start)))
	}
	fmt.Println("read_file allowed:", d.Allowed)

	_, err = g.Check(ctx, "delete_file", guard.LengthSummary("/etc/passwd"))
	var denied *guard.DeniedError
	if errors.As(err, &denied) {
		fmt.Println("delete_file denied:", denied.Reason)
	}

	if err := g.Close(ctx); err != nil {
		fmt.Println("telemetry:", err)
	}
	st := g.Stats()
	fmt.Printf("checks %d, denied %d, events sent %d\n", st.Checks, st.Denied, st.Sent)
	// Output:
	// read_file allowed: true
	// delete_file denied: destructive tools are not allowed
	// checks 2, denied 1, events sent 1
}

// TruncateRunes cuts on rune boundaries, as the guard does with input
// summaries.
func ExampleTruncateRunes() {
	fmt.Println(guard.TruncateRunes("日本語のテキスト", 3))
	// Output: 日本語
}
