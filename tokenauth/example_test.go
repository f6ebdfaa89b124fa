package tokenauth_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	agenttrust "github.com/agenttrustid/agenttrust-go"
	"github.com/agenttrustid/agenttrust-go/agenttrusttest"
	"github.com/agenttrustid/agenttrust-go/tokenauth"
)

// A tool provider protects its handler with RequireToken; the handler reads
// the caller's identity from the request context.
func ExampleRequireToken() {
	gw, err := agenttrusttest.NewServer() // a real gateway in production
	if err != nil {
		panic(err)
	}
	defer gw.Close()
	client, err := agenttrust.New(agenttrust.WithBaseURL(gw.URL()), agenttrust.WithAuthURL(gw.AuthURL()), agenttrust.WithAPIKey(gw.APIKey()))
	if err != nil {
		panic(err)
	}

	tool := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res, _ := tokenauth.FromContext(r.Context())
		fmt.Fprintf(w, "hello %s, scopes %v", res.AgentID, res.Scopes)
	})
	srv := httptest.NewServer(tokenauth.RequireToken(client, tokenauth.WithRequiredScopes("files:read"))(tool))
	defer srv.Close()

	// The agent side: a token, presented as a bearer token.
	agentID := gw.CreateAgent("reader", "files:read")
	tok, err := client.Tokens.Issue(context.Background(), agenttrust.TokenIssueParams{AgentID: agentID, Scopes: []string{"files:read"}})
	if err != nil {
		panic(err)
	}
	for _, authz := range []string{"Bearer " + tok.Token, ""} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
		if authz != "" {
			req.Header.Set("Authorization", authz)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Println(resp.StatusCode, resp.Header.Get("WWW-Authenticate"), string(body))
	}
	// Output:
	// 200  hello agent-1, scopes [files:read]
	// 401 Bearer realm="agenttrust" {"error":"unauthorized","error_description":"a bearer token is required"}
}

// NewVerifier checks tokens outside HTTP middleware, e.g. in a gRPC
// interceptor or a message consumer.
func ExampleVerifier_Verify() {
	gw, err := agenttrusttest.NewServer()
	if err != nil {
		panic(err)
	}
	defer gw.Close()
	client, err := agenttrust.New(agenttrust.WithBaseURL(gw.URL()), agenttrust.WithAuthURL(gw.AuthURL()), agenttrust.WithAPIKey(gw.APIKey()))
	if err != nil {
		panic(err)
	}
	v, err := tokenauth.NewVerifier(client, tokenauth.WithRequiredScopes("queue:consume"))
	if err != nil {
		panic(err)
	}
	_, err = v.Verify(context.Background(), "at_not_a_real_token")
	var rej *tokenauth.RejectedError
	switch {
	case errors.As(err, &rej):
		fmt.Println("rejected:", rej.Reasoning)
	case err != nil:
		fmt.Println("gateway unavailable; refuse and retry later")
	}
	// Output:
	// rejected: unknown token
}
