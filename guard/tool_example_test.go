package guard_test

import (
	"context"
	"errors"
	"fmt"
	"os"

	agenttrust "github.com/agenttrustid/agenttrust-go"
	"github.com/agenttrustid/agenttrust-go/agenttrusttest"
	"github.com/agenttrustid/agenttrust-go/guard"
)

// A tool loop of your own: every call goes through one ToolRunner, which
// checks, runs only what was allowed and reports the outcome.
func ExampleToolRunner() {
	srv, err := agenttrusttest.NewServer()
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	srv.DenyTool("delete_file", "destructive tools are not allowed")
	client, err := agenttrust.New(agenttrust.WithBaseURL(srv.URL()), agenttrust.WithAPIKey(srv.APIKey()))
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	g, err := guard.New(client, srv.CreateAgent("example-agent"))
	if err != nil {
		panic(err)
	}
	defer g.Close(ctx)

	runner, err := guard.NewToolRunner(g, guard.WithDenialAsObservation(nil),
		guard.WithActionEffects(map[string]guard.Effect{"delete_file": guard.EffectDestructive}))
	if err != nil {
		panic(err)
	}
	tools := map[string]func(path string) (string, error){
		"read_file":   func(path string) (string, error) { return "contents of " + path, nil },
		"delete_file": func(path string) (string, error) { return "", os.Remove(path) },
	}
	for _, call := range []struct{ tool, input string }{{"read_file", "/tmp/a"}, {"delete_file", "/tmp/a"}} {
		var out string
		obs, ran, err := runner.Run(ctx, call.tool, call.input, func(context.Context) error {
			var err error
			out, err = tools[call.tool](call.input)
			return err
		})
		switch {
		case errors.Is(err, guard.ErrElevationRequired), errors.Is(err, guard.ErrGuardianUnavailable):
			fmt.Println("stop:", err)
		case err != nil:
			fmt.Println(call.tool, "failed:", err)
		case !ran:
			fmt.Println(call.tool, "->", obs) // the denial, as text for the model
		default:
			fmt.Println(call.tool, "->", out)
		}
	}
	// Output:
	// read_file -> contents of /tmp/a
	// delete_file -> Tool "delete_file" was denied by policy.
}
