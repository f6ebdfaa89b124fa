// Command agent runs a langchaingo agents.Executor whose tools are guarded
// by AgentTrust, driven by a scripted fake LLM against the fake gateway in
// process, so it runs offline:
//
//	cd integrations/langchaingo && go run ./examples/agent
//
// The model first asks to delete a file (denied by policy and returned to it
// as an observation), then reads the file and answers.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	agenttrust "github.com/agenttrustid/agenttrust-go"
	"github.com/agenttrustid/agenttrust-go/agenttrusttest"
	"github.com/agenttrustid/agenttrust-go/guard"
	lcg "github.com/agenttrustid/agenttrust-go/integrations/langchaingo"
	"github.com/tmc/langchaingo/agents"
	"github.com/tmc/langchaingo/chains"
	"github.com/tmc/langchaingo/llms/fake"
	"github.com/tmc/langchaingo/schema"
	"github.com/tmc/langchaingo/tools"
)

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "agent:", err)
		os.Exit(1)
	}
}

// fileTool is a toy tool over an in-memory file.
type fileTool struct{ name, desc, result string }

func (t fileTool) Name() string        { return t.name }
func (t fileTool) Description() string { return t.desc }
func (t fileTool) Call(_ context.Context, input string) (string, error) {
	return fmt.Sprintf(t.result, strings.TrimSpace(input)), nil
}

func run(ctx context.Context, out io.Writer) error {
	srv, err := agenttrusttest.NewServer()
	if err != nil {
		return err
	}
	defer srv.Close()
	srv.DenyTool("delete_file", "destructive tools are not allowed")
	agentID := srv.CreateAgent("langchaingo-demo")
	client, err := agenttrust.New(agenttrust.WithBaseURL(srv.URL()), agenttrust.WithAPIKey(srv.APIKey()))
	if err != nil {
		return err
	}

	g, err := guard.New(client, agentID)
	if err != nil {
		return err
	}
	defer g.Close(context.Background()) // a no-op after the Close below

	wrapped := lcg.WrapTools([]tools.Tool{
		fileTool{"read_file", "reads a file", "contents of %s: quarterly numbers"},
		fileTool{"delete_file", "deletes a file", "deleted %s"},
	}, g, lcg.WithDenialAsObservation(nil), lcg.WithActionEffects(map[string]guard.Effect{
		"read_file": guard.EffectRead, "delete_file": guard.EffectDestructive,
	}))
	llm := fake.NewFakeLLM([]string{
		"Thought: the old report is in the way.\nAction: delete_file\nAction Input: /tmp/report.txt",
		"Thought: I may not delete it, so I will read it instead.\nAction: read_file\nAction Input: /tmp/report.txt",
		"Final Answer: the report holds the quarterly numbers",
	})
	ex := agents.NewExecutor(agents.NewOneShotAgent(llm, wrapped),
		agents.WithMaxIterations(5),
		agents.WithCallbacksHandler(lcg.NewHandler(g, wrapped)),
		agents.WithReturnIntermediateSteps())

	res, err := chains.Call(ctx, ex, map[string]any{"input": "tidy up /tmp/report.txt"})
	if err != nil {
		return err
	}
	steps, _ := res["intermediateSteps"].([]schema.AgentStep)
	for _, s := range steps {
		fmt.Fprintf(out, "%-11s -> %s\n", s.Action.Tool, s.Observation)
	}
	fmt.Fprintf(out, "answer: %v\n", res["output"])

	closeCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := g.Close(closeCtx); err != nil {
		return err
	}
	st := g.Stats()
	fmt.Fprintf(out, "checks %d, denied %d; telemetry: %d events sent, %d dropped\n", st.Checks, st.Denied, st.Sent, st.Dropped)
	return nil
}
