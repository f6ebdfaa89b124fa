package agenttrusteino_test

import (
	"context"
	"errors"
	"fmt"

	agenttrust "github.com/agenttrustid/agenttrust-go"
	"github.com/agenttrustid/agenttrust-go/agenttrusttest"
	"github.com/agenttrustid/agenttrust-go/guard"
	ateino "github.com/agenttrustid/agenttrust-go/integrations/eino"
	"github.com/cloudwego/eino/components/tool"
	"github.com/cloudwego/eino/components/tool/utils"
	"github.com/cloudwego/eino/compose"
	"github.com/cloudwego/eino/flow/agent"
	"github.com/cloudwego/eino/flow/agent/react"
	"github.com/cloudwego/eino/schema"
)

// exampleGuard starts a fake gateway that denies delete_file and returns a
// Guard for it and a function that stops both.
func exampleGuard() (*guard.Guard, func()) {
	srv, err := agenttrusttest.NewServer()
	if err != nil {
		panic(err)
	}
	srv.DenyTool("delete_file", "destructive tools are not allowed")
	client, err := agenttrust.New(agenttrust.WithBaseURL(srv.URL()), agenttrust.WithAPIKey(srv.APIKey()))
	if err != nil {
		panic(err)
	}
	g, err := guard.New(client, srv.CreateAgent("example-agent"))
	if err != nil {
		panic(err)
	}
	return g, func() { _ = g.Close(context.Background()); srv.Close() }
}

func exampleTool(name string) tool.BaseTool {
	t, err := utils.InferTool(name, "a file tool", func(_ context.Context, in fileInput) (string, error) {
		return name + " done on " + in.Path, nil
	})
	if err != nil {
		panic(err)
	}
	return t
}

// Guard every tool of a ReAct agent with one middleware; a denial ends the
// run with a *guard.DeniedError.
func ExampleMiddleware() {
	g, stop := exampleGuard()
	defer stop()
	ctx := context.Background()
	mw, err := ateino.Middleware(g)
	if err != nil {
		panic(err)
	}
	for _, name := range []string{"read_file", "delete_file"} {
		a, err := react.NewAgent(ctx, &react.AgentConfig{
			ToolCallingModel: &scriptedModel{calls: []string{name}}, // a chat model that calls name once
			ToolsConfig: compose.ToolsNodeConfig{
				Tools:               []tool.BaseTool{exampleTool("read_file"), exampleTool("delete_file")},
				ToolCallMiddlewares: []compose.ToolMiddleware{mw},
			},
			MaxStep: 4,
		})
		if err != nil {
			panic(err)
		}
		msg, err := a.Generate(ctx, []*schema.Message{schema.UserMessage("tidy up")},
			agent.WithComposeOptions(compose.WithCallbacks(ateino.NewHandler(g))))
		var denied *guard.DeniedError
		switch {
		case errors.As(err, &denied):
			fmt.Println(name, "denied:", denied.Reason)
		case err != nil:
			fmt.Println(name, "failed:", err)
		default:
			fmt.Println(msg.Content)
		}
	}
	// Output:
	// done: read_file=read_file done on /etc/passwd
	// delete_file denied: destructive tools are not allowed
}

// Wrap one invokable tool; its calls are checked wherever it is invoked.
func ExampleWrapTool() {
	g, stop := exampleGuard()
	defer stop()
	ctx := context.Background()
	deleteFile, err := ateino.WrapTool(ctx, exampleTool("delete_file").(tool.InvokableTool), g,
		guard.WithDenialAsObservation(nil))
	if err != nil {
		panic(err)
	}
	out, err := deleteFile.InvokableRun(ctx, `{"path":"/tmp/a"}`)
	fmt.Println(out, err)
	// Output:
	// Tool "delete_file" was denied by policy. <nil>
}
