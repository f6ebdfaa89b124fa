package agenttrust_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"

	agenttrust "github.com/agenttrustid/agenttrust-go"
	"github.com/agenttrustid/agenttrust-go/agenttrusttest"
)

// Calling an MCP tool through the gateway's proxy and decoding its result.
// The fake gateway stands in for a real one; the MCP server is a small
// JSON-RPC handler on loopback.
func ExampleMCPService_CallTool() {
	gw, err := agenttrusttest.NewServer()
	if err != nil {
		panic(err)
	}
	defer gw.Close()
	mcp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Params struct {
				Arguments struct{ City string } `json:"arguments"`
			} `json:"params"`
		}
		_ = json.NewDecoder(r.Body).Decode(&req)
		if req.Params.Arguments.City == "" {
			fmt.Fprint(w, `{"jsonrpc": "2.0", "id": 1, "error": {"code": -32602, "message": "city is required"}}`)
			return
		}
		fmt.Fprintf(w, `{"jsonrpc": "2.0", "id": 1, "result": {"content": [{"type": "text", "text": "sunny in %s"}]}}`, req.Params.Arguments.City)
	}))
	defer mcp.Close()

	ctx := context.Background()
	c, err := agenttrust.New(agenttrust.WithBaseURL(gw.URL()), agenttrust.WithAPIKey(gw.APIKey()))
	if err != nil {
		panic(err)
	}
	agentID := gw.CreateAgent("weather-bot", "weather:read")
	srv, err := c.MCP.RegisterServer(ctx, agenttrust.MCPRegisterServerParams{Name: "weather", URL: mcp.URL})
	if err != nil {
		panic(err)
	}

	raw, err := c.MCP.CallTool(ctx, srv.ID, agenttrust.MCPCallToolParams{
		AgentID: agentID,
		Method:  "tools/call",
		Params:  map[string]any{"name": "forecast", "arguments": map[string]any{"city": "Lisbon"}},
	})
	if err != nil {
		panic(err)
	}
	type toolResult struct {
		Content []struct{ Text string } `json:"content"`
	}
	res, err := agenttrust.DecodeResult[toolResult](raw)
	if err != nil {
		panic(err)
	}
	fmt.Println(res.Content[0].Text)

	// A JSON-RPC error from the MCP server is a typed error.
	_, err = c.MCP.CallTool(ctx, srv.ID, agenttrust.MCPCallToolParams{
		AgentID: agentID,
		Method:  "tools/call",
		Params:  map[string]any{"name": "forecast", "arguments": map[string]any{}},
	})
	var rpcErr *agenttrust.JSONRPCError
	if errors.As(err, &rpcErr) {
		fmt.Println(rpcErr.RPCCode, rpcErr.RPCMessage)
	}
	// Output:
	// sunny in Lisbon
	// -32602 city is required
}

// A partial update of a SIEM destination: only the fields set are sent, so
// false and 0 reach the gateway. The auth token never shows when printed.
func ExampleStreamingService_Update() {
	gw, err := agenttrusttest.NewServer()
	if err != nil {
		panic(err)
	}
	defer gw.Close()
	ctx := context.Background()
	c, err := agenttrust.New(agenttrust.WithBaseURL(gw.URL()), agenttrust.WithAPIKey(gw.APIKey()))
	if err != nil {
		panic(err)
	}
	dest, err := c.Streaming.Create(ctx, agenttrust.StreamingCreateParams{
		Name:            "splunk",
		DestinationType: "splunk_hec",
		EndpointURL:     "https://splunk.example:8088/services/collector",
		AuthToken:       agenttrust.Ptr("hec-secret"),
	})
	if err != nil {
		panic(err)
	}
	dest, err = c.Streaming.Update(ctx, dest.ID, agenttrust.StreamingUpdateParams{
		IsActive:  agenttrust.Ptr(false),
		BatchSize: agenttrust.Ptr(0),
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(dest.IsActive, dest.BatchSize)
	fmt.Printf("%+v\n", agenttrust.StreamingUpdateParams{AuthToken: agenttrust.Ptr("hec-secret")})

	_, err = c.Streaming.Update(ctx, dest.ID, agenttrust.StreamingUpdateParams{})
	fmt.Println(errors.Is(err, agenttrust.ErrValidation))
	// Output:
	// false 0
	// agenttrust.StreamingUpdateParams{Name: nil, EndpointURL: nil, AuthToken: [redacted], IsActive: nil, BatchSize: nil, FlushIntervalSeconds: nil, FilterEventTypes: nil}
	// true
}
