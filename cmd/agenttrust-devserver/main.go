// Command agenttrust-devserver runs the fake AgentTrust gateway of package
// agenttrusttest as a standalone process, so that an AgentTrust SDK in any
// language can be pointed at it during development and in CI.
//
// Usage:
//
//	agenttrust-devserver [-addr 127.0.0.1:8080] [-policy policy.json] [-api-key KEY] [-split]
//
// The flags -require-pop and -require-sender-constrained turn on the
// organisation security settings: WIMSE tokens then need a proof of
// possession, and action checks a WIMSE token with a DPoP proof. The
// proof's htu is compared byte for byte with the printed URL plus the path,
// so clients must use the printed URL as it is (127.0.0.1, not localhost).
//
// It prints its URL(s), security settings and API key, serves until SIGINT or SIGTERM, and then
// shuts down cleanly. State lives in memory only.
//
// The policy file is a JSON object with a deny list (tool name to reason)
// and an elevation list (tools that need an approval):
//
//	{"deny": {"delete_file": "destructive tool"}, "elevation": ["deploy"]}
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/agenttrustid/agenttrust-go/agenttrusttest"
)

func main() {
	err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case err != nil:
		fmt.Fprintln(os.Stderr, "agenttrust-devserver:", err)
		os.Exit(1)
	}
}

// run starts the fake and serves until ctx ends or SIGINT/SIGTERM arrives.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("agenttrust-devserver", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8080", "gateway listen address")
	policyPath := fs.String("policy", "", "JSON policy file: {\"deny\": {tool: reason}, \"elevation\": [tool]}")
	apiKey := fs.String("api-key", "", "API key to accept (default: a random sk_test_ key)")
	split := fs.Bool("split", false, "serve auth and audit APIs on listeners of their own")
	requirePoP := fs.Bool("require-pop", false, "require proof of possession for WIMSE tokens")
	requireSC := fs.Bool("require-sender-constrained", false, "require a WIMSE token and DPoP proof on action checks")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}

	opts := []agenttrusttest.Option{agenttrusttest.WithAddr(*addr)}
	if *policyPath != "" {
		p, err := loadPolicy(*policyPath)
		if err != nil {
			return err
		}
		opts = append(opts, agenttrusttest.WithPolicy(p))
	}
	if *apiKey != "" {
		opts = append(opts, agenttrusttest.WithAPIKey(*apiKey))
	}
	if *split {
		opts = append(opts, agenttrusttest.WithSplitListeners())
	}
	opts = append(opts, agenttrusttest.WithSecuritySettings(agenttrusttest.SecuritySettings{
		RequireProofOfPossession: *requirePoP, RequireSenderConstrainedTokens: *requireSC,
	}))

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv, err := agenttrusttest.NewServer(opts...)
	if err != nil {
		return err
	}
	defer srv.Close()

	fmt.Fprintf(stdout, "AgentTrust fake gateway listening on %s\n", srv.URL())
	if *split {
		fmt.Fprintf(stdout, "auth URL: %s\naudit URL: %s\n", srv.AuthURL(), srv.AuditURL())
	}
	ss := srv.SecuritySettings()
	fmt.Fprintf(stdout, "security settings: require_proof_of_possession=%t require_sender_constrained_tokens=%t\n",
		ss.RequireProofOfPossession, ss.RequireSenderConstrainedTokens)
	fmt.Fprintf(stdout, "API key: %s\n", srv.APIKey())
	fmt.Fprintf(stdout, "export AGENTTRUST_URL=%s AGENTTRUST_API_KEY=%s\n", srv.URL(), srv.APIKey())

	<-ctx.Done()
	fmt.Fprintln(stdout, "shutting down")
	return nil
}

// loadPolicy reads a policy file strictly: unknown keys are errors.
func loadPolicy(path string) (agenttrusttest.Policy, error) {
	var p agenttrusttest.Policy
	data, err := os.ReadFile(path)
	if err != nil {
		return p, fmt.Errorf("policy: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return p, fmt.Errorf("policy %s: %w", path, err)
	}
	for _, tool := range p.Elevation {
		if tool == "" {
			return p, fmt.Errorf("policy %s: empty tool name in elevation", path)
		}
	}
	return p, nil
}
