// Command tool-provider is an MCP tool provider protected by AgentTrust
// tokens, and an agent that uses it.
//
// It starts an MCP server (streamable HTTP, on loopback) with one tool,
// "word_count", behind auth.RequireBearerToken with the AgentTrust
// verifier; then, as the agent, it obtains a token, lists the tools and
// calls one. Finally it shows that a token without the required scope is
// refused. It prints what happens and exits non-zero on any failure.
//
// By default everything runs offline against the in-memory fake gateway
// (agenttrusttest). To use a real gateway, set AGENTTRUST_URL (and
// AGENTTRUST_AUTH_URL if the auth service is elsewhere), AGENTTRUST_API_KEY
// and AGENTTRUST_AGENT_ID, an agent allowed the scope "tools:call".
//
//	go run ./examples/tool-provider
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	agenttrust "github.com/agenttrustid/agenttrust-go"
	"github.com/agenttrustid/agenttrust-go/agenttrusttest"
	agenttrustmcp "github.com/agenttrustid/agenttrust-go/integrations/mcp"
	"github.com/agenttrustid/agenttrust-go/tokenauth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := run(ctx, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "tool-provider:", err)
		os.Exit(1)
	}
}

type countIn struct {
	Text string `json:"text" jsonschema:"the text to count words in"`
}

type countOut struct {
	Words   int    `json:"words"`
	AgentID string `json:"agent_id"`
}

func run(ctx context.Context, out io.Writer) error {
	client, agentID, cleanup, err := gateway()
	if err != nil {
		return err
	}
	defer cleanup()

	// The tool provider: an MCP server with one tool, protected in one line.
	server := mcp.NewServer(&mcp.Implementation{Name: "text-tools", Version: "1.0.0"}, nil)
	mcp.AddTool(server, &mcp.Tool{Name: "word_count", Description: "Counts the words of a text."},
		func(ctx context.Context, req *mcp.CallToolRequest, in countIn) (*mcp.CallToolResult, countOut, error) {
			// req.Extra.TokenInfo is what the verifier learnt from the gateway.
			return nil, countOut{Words: len(strings.Fields(in.Text)), AgentID: req.Extra.TokenInfo.UserID}, nil
		})
	handler := agenttrustmcp.RequireToken(client, tokenauth.WithTarget("text-tools"), tokenauth.WithRequiredScopes("tools:call"))(
		mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, nil))

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	httpServer := &http.Server{Handler: handler, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = httpServer.Serve(ln) }()
	defer func() {
		_ = httpServer.Close()
		for ss := range server.Sessions() {
			_ = ss.Close()
		}
	}()
	endpoint := "http://" + ln.Addr().String()
	fmt.Fprintln(out, "MCP server listening on", endpoint)

	// The agent: a token for the tool provider, then the MCP session.
	tok, err := client.Tokens.Issue(ctx, agenttrust.TokenIssueParams{AgentID: agentID, Scopes: []string{"tools:call"}, Target: "text-tools"})
	if err != nil {
		return fmt.Errorf("issuing a token: %w", err)
	}
	fmt.Fprintln(out, "agent", agentID, "got", tok) // Token's String hides the secret

	session, err := connect(ctx, endpoint, tok.Token)
	if err != nil {
		return fmt.Errorf("connecting with a valid token: %w", err)
	}
	defer session.Close()
	tools, err := session.ListTools(ctx, nil)
	if err != nil {
		return fmt.Errorf("listing tools: %w", err)
	}
	for _, t := range tools.Tools {
		fmt.Fprintf(out, "tool %s: %s\n", t.Name, t.Description)
	}
	res, err := session.CallTool(ctx, &mcp.CallToolParams{Name: "word_count", Arguments: countIn{Text: "agents need identity too"}})
	if err != nil {
		return fmt.Errorf("calling word_count: %w", err)
	}
	if res.IsError {
		return fmt.Errorf("word_count failed: %v", res.Content)
	}
	got, _ := res.StructuredContent.(map[string]any)
	fmt.Fprintf(out, "word_count: %v words, called by %v\n", got["words"], got["agent_id"])
	if got["words"] != float64(4) || got["agent_id"] != agentID {
		return fmt.Errorf("unexpected result %v", got)
	}

	// A token without tools:call is refused by the server.
	weak, err := client.Tokens.Issue(ctx, agenttrust.TokenIssueParams{AgentID: agentID, Scopes: []string{}, NoCache: true})
	if err != nil {
		return fmt.Errorf("issuing a token without scopes: %w", err)
	}
	if s, err := connect(ctx, endpoint, weak.Token); err == nil {
		s.Close()
		return errors.New("a token without tools:call was accepted")
	} else {
		fmt.Fprintln(out, "token without tools:call refused:", err)
	}
	fmt.Fprintln(out, "ok")
	return nil
}

// connect opens an MCP session sending token as the bearer token.
func connect(ctx context.Context, endpoint, token string) (*mcp.ClientSession, error) {
	hc := &http.Client{Transport: bearer{token: token, base: http.DefaultTransport}, Timeout: 10 * time.Second}
	c := mcp.NewClient(&mcp.Implementation{Name: "example-agent", Version: "1.0.0"}, nil)
	return c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: endpoint, HTTPClient: hc, MaxRetries: -1, DisableStandaloneSSE: true}, nil)
}

type bearer struct {
	token string
	base  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.base.RoundTrip(r)
}

// gateway returns a client for the real gateway named by the environment,
// or starts the fake one with an agent allowed "tools:call".
func gateway() (client *agenttrust.Client, agentID string, cleanup func(), err error) {
	if os.Getenv("AGENTTRUST_URL") != "" {
		agentID = os.Getenv("AGENTTRUST_AGENT_ID")
		if agentID == "" {
			return nil, "", nil, errors.New("AGENTTRUST_URL is set but AGENTTRUST_AGENT_ID is not")
		}
		client, err = agenttrust.FromEnv()
		return client, agentID, func() {}, err
	}
	fake, err := agenttrusttest.NewServer()
	if err != nil {
		return nil, "", nil, err
	}
	client, err = agenttrust.New(agenttrust.WithBaseURL(fake.URL()), agenttrust.WithAuthURL(fake.AuthURL()),
		agenttrust.WithAuditURL(fake.AuditURL()), agenttrust.WithAPIKey(fake.APIKey()))
	if err != nil {
		fake.Close()
		return nil, "", nil, err
	}
	return client, fake.CreateAgent("text-agent", "tools:call"), fake.Close, nil
}
