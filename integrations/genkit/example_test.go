package agenttrustgenkit_test

import (
	"context"
	"errors"
	"fmt"

	agenttrust "github.com/agenttrustid/agenttrust-go"
	"github.com/agenttrustid/agenttrust-go/agenttrusttest"
	"github.com/agenttrustid/agenttrust-go/guard"
	atgenkit "github.com/agenttrustid/agenttrust-go/integrations/genkit"
	"github.com/firebase/genkit/go/ai"
	"github.com/firebase/genkit/go/genkit"
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

// callOnce is a model that calls the tool named in its prompt once, then
// answers with the tool's output.
func callOnce(_ context.Context, req *ai.ModelRequest, _ ai.ModelStreamCallback) (*ai.ModelResponse, error) {
	last := req.Messages[len(req.Messages)-1]
	if last.Role == ai.RoleTool {
		return &ai.ModelResponse{Request: req, Message: ai.NewModelTextMessage(fmt.Sprint(last.Content[0].ToolResponse.Output))}, nil
	}
	part := ai.NewToolRequestPart(&ai.ToolRequest{Name: last.Text(), Input: map[string]any{"path": "/tmp/a"}})
	return &ai.ModelResponse{Request: req, Message: ai.NewModelMessage(part)}, nil
}

type pathInput struct {
	Path string `json:"path"`
}

// Guard a registered tool and an unregistered one; a denial stops the
// generate call with a *guard.DeniedError.
func Example() {
	g, stop := exampleGuard()
	defer stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	gk := genkit.Init(ctx)
	model := genkit.DefineModel(gk, "example/model", &ai.ModelOptions{Supports: &ai.ModelSupports{Tools: true, Multiturn: true}}, callOnce)

	readFile, err := atgenkit.DefineTool(gk, g, "read_file", "reads a file",
		func(_ *ai.ToolContext, in pathInput) (string, error) { return "contents of " + in.Path, nil })
	if err != nil {
		panic(err)
	}
	deleteFile, err := atgenkit.WrapTool(ai.NewTool("delete_file", "deletes a file",
		func(_ *ai.ToolContext, in pathInput) (string, error) { return "deleted " + in.Path, nil }), g)
	if err != nil {
		panic(err)
	}
	for _, tool := range []string{"read_file", "delete_file"} {
		resp, err := atgenkit.Generate(ctx, gk, ai.WithModel(model), ai.WithPrompt(tool), ai.WithTools(readFile, deleteFile))
		var denied *guard.DeniedError
		switch {
		case errors.As(err, &denied):
			fmt.Println(tool, "denied:", denied.Reason)
		case err != nil:
			fmt.Println(tool, "failed:", err)
		default:
			fmt.Println(tool, "->", resp.Text())
		}
	}
	// Output:
	// read_file -> contents of /tmp/a
	// delete_file denied: destructive tools are not allowed
}
