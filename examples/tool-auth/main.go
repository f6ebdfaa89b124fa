// Command tool-auth shows both halves of tool-provider authentication: a
// tool provider that admits only requests with an AgentTrust token carrying
// "files:read" (tokenauth.RequireToken), and an agent whose HTTP client
// presents its cached token on every request (TokenSource.Transport).
//
// It runs offline on the in-memory fake gateway:
//
//	go run ./examples/tool-auth
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	agenttrust "github.com/agenttrustid/agenttrust-go"
	"github.com/agenttrustid/agenttrust-go/agenttrusttest"
	"github.com/agenttrustid/agenttrust-go/tokenauth"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := run(ctx, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "tool-auth failed:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out io.Writer) error {
	say := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }

	gw, err := agenttrusttest.NewServer() // a real gateway in production
	if err != nil {
		return err
	}
	defer gw.Close()
	client, err := agenttrust.New(agenttrust.WithBaseURL(gw.URL()), agenttrust.WithAuthURL(gw.AuthURL()),
		agenttrust.WithAPIKey(gw.APIKey()))
	if err != nil {
		return err
	}
	defer client.Close()
	reader := gw.CreateAgent("report-reader", "files:read")
	writer := gw.CreateAgent("report-writer", "files:write")

	// The tool provider: its handler runs only for an accepted token and
	// learns who is calling from the request context.
	files := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		caller, _ := tokenauth.FromContext(r.Context())
		fmt.Fprintf(w, "contents of %s, read by %s", r.URL.Path, caller.AgentID)
	})
	mux := http.NewServeMux()
	mux.Handle("/files/", tokenauth.RequireToken(client, tokenauth.WithRequiredScopes("files:read"))(files))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	tool := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = tool.Serve(l) }()
	defer tool.Close()
	toolURL := "http://" + l.Addr().String()

	// The agent: one token source per agent, target and scope set, and an
	// HTTP client that presents the source's token.
	src, err := client.Tokens.NewSource(agenttrust.TokenIssueParams{
		AgentID: reader, Scopes: []string{"files:read"}, Target: "files-service",
	})
	if err != nil {
		return err
	}
	transport := &http.Transport{}
	defer transport.CloseIdleConnections()
	agentHTTP := &http.Client{Transport: src.Transport(transport), Timeout: 10 * time.Second}

	for _, name := range []string{"q1.txt", "q2.txt"} {
		status, body, err := get(ctx, agentHTTP, toolURL+"/files/"+name)
		if err != nil {
			return err
		}
		say("agent: %d %s", status, body)
	}
	say("tokens issued for the agent: %d (the second call reused the cached token)", issued(gw))

	// Without the token the tool refuses.
	status, body, err := get(ctx, &http.Client{Transport: transport}, toolURL+"/files/q1.txt")
	if err != nil {
		return err
	}
	say("no token: %d %s", status, body)

	// An agent whose token lacks files:read is refused too.
	other, err := client.Tokens.NewSource(agenttrust.TokenIssueParams{
		AgentID: writer, Scopes: []string{"files:write"}, Target: "files-service",
	})
	if err != nil {
		return err
	}
	status, _, err = get(ctx, &http.Client{Transport: other.Transport(transport)}, toolURL+"/files/q1.txt")
	if err != nil {
		return err
	}
	say("token without files:read: %d", status)

	// A token the gateway will not issue never leaves the agent: the
	// request fails before it is sent, with the SDK's typed error.
	denied, err := client.Tokens.NewSource(agenttrust.TokenIssueParams{
		AgentID: writer, Scopes: []string{"files:read"}, Target: "files-service",
	})
	if err != nil {
		return err
	}
	_, _, err = get(ctx, &http.Client{Transport: denied.Transport(transport)}, toolURL+"/files/q1.txt")
	var ate *agenttrust.AgentTrustError
	if !errors.As(err, &ate) {
		return fmt.Errorf("want an *AgentTrustError for a scope the agent lacks, got %v", err)
	}
	say("scope the agent lacks: not sent (%s)", ate.Code)
	return nil
}

func get(ctx context.Context, c *http.Client, url string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// issued counts the token requests the fake gateway received.
func issued(gw *agenttrusttest.Server) int {
	n := 0
	for _, r := range gw.Requests() {
		if r.Path == "/api/v1/agent-tokens/issue" {
			n++
		}
	}
	return n
}
