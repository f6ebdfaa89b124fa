// Command agent runs Genkit's generate loop with tools guarded by
// AgentTrust, driven by a scripted model against the fake gateway in
// process, so it runs offline:
//
//	cd integrations/genkit && go run ./examples/agent
//
// The model first asks to delete a file (denied by policy and returned to
// it as the tool's output), then reads the file and answers.
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
	atgenkit "github.com/agenttrustid/agenttrust-go/integrations/genkit"
	"github.com/firebase/genkit/go/ai"
	"github.com/firebase/genkit/go/genkit"
)

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "agent:", err)
		os.Exit(1)
	}
}

type fileInput struct {
	Path string `json:"path" jsonschema:"description=the file's path"`
}

// scriptedModel plays a model that deletes, is refused, reads, and answers.
func scriptedModel(_ context.Context, req *ai.ModelRequest, _ ai.ModelStreamCallback) (*ai.ModelResponse, error) {
	turn, last := 0, ""
	for _, m := range req.Messages {
		if m.Role == ai.RoleTool {
			turn++
			for _, p := range m.Content {
				if p.IsToolResponse() {
					last = fmt.Sprint(p.ToolResponse.Output)
				}
			}
		}
	}
	call := func(tool string) (*ai.ModelResponse, error) {
		part := ai.NewToolRequestPart(&ai.ToolRequest{Name: tool, Ref: tool, Input: map[string]any{"path": "/tmp/report.txt"}})
		return &ai.ModelResponse{Request: req, Message: ai.NewModelMessage(part)}, nil
	}
	switch turn {
	case 0:
		return call("delete_file")
	case 1:
		return call("read_file")
	}
	return &ai.ModelResponse{Request: req, Message: ai.NewModelTextMessage("the report holds " + strings.TrimPrefix(last, "contents of /tmp/report.txt: "))}, nil
}

func run(ctx context.Context, out io.Writer) error {
	srv, err := agenttrusttest.NewServer()
	if err != nil {
		return err
	}
	defer srv.Close()
	srv.DenyTool("delete_file", "destructive tools are not allowed")
	agentID := srv.CreateAgent("genkit-demo")
	client, err := agenttrust.New(agenttrust.WithBaseURL(srv.URL()), agenttrust.WithAPIKey(srv.APIKey()))
	if err != nil {
		return err
	}
	g, err := guard.New(client, agentID)
	if err != nil {
		return err
	}
	defer g.Close(context.Background()) // a no-op after the Close below

	gctx, stop := context.WithCancel(ctx) // genkit.Init watches signals until gctx ends
	defer stop()
	gk := genkit.Init(gctx)
	model := genkit.DefineModel(gk, "demo/scripted", &ai.ModelOptions{Supports: &ai.ModelSupports{Tools: true, Multiturn: true}}, scriptedModel)

	opts := []guard.ToolOption{guard.WithDenialAsObservation(nil), guard.WithActionEffects(map[string]guard.Effect{
		"read_file": guard.EffectRead, "delete_file": guard.EffectDestructive,
	})}
	// A registered tool, found by name like any tool of genkit.DefineTool.
	readFile, err := atgenkit.DefineTool(gk, g, "read_file", "reads a file",
		func(_ *ai.ToolContext, in fileInput) (string, error) {
			return "contents of " + in.Path + ": quarterly numbers", nil
		}, opts...)
	if err != nil {
		return err
	}
	// An unregistered tool, wrapped.
	deleteFile, err := atgenkit.WrapTool(ai.NewTool("delete_file", "deletes a file",
		func(_ *ai.ToolContext, in fileInput) (string, error) { return "deleted " + in.Path, nil }), g, opts...)
	if err != nil {
		return err
	}

	resp, err := atgenkit.Generate(ctx, gk, ai.WithModel(model), ai.WithPrompt("tidy up /tmp/report.txt"),
		ai.WithTools(readFile, deleteFile), ai.WithMaxTurns(5))
	if err != nil {
		return err
	}
	for _, m := range resp.History() {
		if m.Role != ai.RoleTool {
			continue
		}
		for _, p := range m.Content {
			if p.IsToolResponse() {
				fmt.Fprintf(out, "%-11s -> %v\n", p.ToolResponse.Name, p.ToolResponse.Output)
			}
		}
	}
	fmt.Fprintf(out, "answer: %s\n", resp.Text())

	closeCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := g.Close(closeCtx); err != nil {
		return err
	}
	st := g.Stats()
	fmt.Fprintf(out, "checks %d, denied %d; telemetry: %d events sent, %d dropped\n", st.Checks, st.Denied, st.Sent, st.Dropped)
	return nil
}
