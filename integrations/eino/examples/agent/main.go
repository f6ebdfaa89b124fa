// Command agent runs Eino's ReAct agent with tools guarded by AgentTrust,
// driven by a scripted chat model against the fake gateway in process, so
// it runs offline:
//
//	cd integrations/eino && go run ./examples/agent
//
// The model first asks to delete a file (denied by policy and returned to
// it as the tool's result), then reads the file and answers.
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
	ateino "github.com/agenttrustid/agenttrust-go/integrations/eino"
	"github.com/cloudwego/eino/components/model"
	"github.com/cloudwego/eino/components/tool"
	"github.com/cloudwego/eino/components/tool/utils"
	"github.com/cloudwego/eino/compose"
	"github.com/cloudwego/eino/flow/agent"
	"github.com/cloudwego/eino/flow/agent/react"
	"github.com/cloudwego/eino/schema"
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

// scriptedModel plays a chat model that deletes, is refused, reads, and
// answers; it keeps the tool results it was given, for printing.
type scriptedModel struct{ results []*schema.Message }

func (m *scriptedModel) Generate(_ context.Context, input []*schema.Message, _ ...model.Option) (*schema.Message, error) {
	var results []*schema.Message
	for _, m := range input {
		if m.Role == schema.Tool {
			results = append(results, m)
		}
	}
	call := func(tool string) *schema.Message {
		return schema.AssistantMessage("", []schema.ToolCall{{ID: tool, Type: "function",
			Function: schema.FunctionCall{Name: tool, Arguments: `{"path":"/tmp/report.txt"}`}}})
	}
	switch len(results) {
	case 0:
		return call("delete_file"), nil
	case 1:
		return call("read_file"), nil
	}
	m.results = results
	last := results[len(results)-1].Content
	return schema.AssistantMessage("the report holds "+strings.TrimPrefix(last, "contents of /tmp/report.txt: "), nil), nil
}

func (m *scriptedModel) Stream(ctx context.Context, input []*schema.Message, opts ...model.Option) (*schema.StreamReader[*schema.Message], error) {
	msg, err := m.Generate(ctx, input, opts...)
	if err != nil {
		return nil, err
	}
	return schema.StreamReaderFromArray([]*schema.Message{msg}), nil
}

func (m *scriptedModel) WithTools([]*schema.ToolInfo) (model.ToolCallingChatModel, error) {
	return m, nil
}

func run(ctx context.Context, out io.Writer) error {
	srv, err := agenttrusttest.NewServer()
	if err != nil {
		return err
	}
	defer srv.Close()
	srv.DenyTool("delete_file", "destructive tools are not allowed")
	agentID := srv.CreateAgent("eino-demo")
	client, err := agenttrust.New(agenttrust.WithBaseURL(srv.URL()), agenttrust.WithAPIKey(srv.APIKey()))
	if err != nil {
		return err
	}
	g, err := guard.New(client, agentID)
	if err != nil {
		return err
	}
	defer g.Close(context.Background()) // a no-op after the Close below

	readFile, err := utils.InferTool("read_file", "reads a file", func(_ context.Context, in fileInput) (string, error) {
		return "contents of " + in.Path + ": quarterly numbers", nil
	})
	if err != nil {
		return err
	}
	deleteFile, err := utils.InferTool("delete_file", "deletes a file", func(_ context.Context, in fileInput) (string, error) {
		return "deleted " + in.Path, nil
	})
	if err != nil {
		return err
	}
	// One middleware guards every tool of the agent's ToolsNode.
	mw, err := ateino.Middleware(g, guard.WithDenialAsObservation(nil), guard.WithActionEffects(map[string]guard.Effect{
		"read_file": guard.EffectRead, "delete_file": guard.EffectDestructive,
	}))
	if err != nil {
		return err
	}
	llm := &scriptedModel{}
	a, err := react.NewAgent(ctx, &react.AgentConfig{
		ToolCallingModel: llm,
		ToolsConfig: compose.ToolsNodeConfig{
			Tools:               []tool.BaseTool{readFile, deleteFile},
			ToolCallMiddlewares: []compose.ToolMiddleware{mw},
		},
		MaxStep: 8,
	})
	if err != nil {
		return err
	}
	msg, err := a.Generate(ctx, []*schema.Message{schema.UserMessage("tidy up /tmp/report.txt")},
		agent.WithComposeOptions(compose.WithCallbacks(ateino.NewHandler(g))))
	if err != nil {
		return err
	}
	for _, r := range llm.results {
		fmt.Fprintf(out, "%-11s -> %s\n", r.ToolName, r.Content)
	}
	fmt.Fprintf(out, "answer: %s\n", msg.Content)

	closeCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := g.Close(closeCtx); err != nil {
		return err
	}
	st := g.Stats()
	fmt.Fprintf(out, "checks %d, denied %d; telemetry: %d events sent, %d dropped\n", st.Checks, st.Denied, st.Sent, st.Dropped)
	return nil
}
