// Command agenttrust-devserver runs the fake AgentTrust gateway of package
// agenttrusttest as a standalone process, so that an AgentTrust SDK in any
// language can be pointed at it during development and in CI.
//
// Usage:
//
//	agenttrust-devserver [-addr 127.0.0.1:8080] [-policy policy.json] [-api-key KEY]
//	    [-split [-auth-addr ADDR] [-audit-addr ADDR]]
//	    [-read-header-timeout 10s] [-read-timeout 30s] [-idle-timeout 2m]
//
// It prints its URLs, its API key and the environment a client needs
// (AGENTTRUST_URL, AGENTTRUST_AUTH_URL, AGENTTRUST_AUDIT_URL,
// AGENTTRUST_API_KEY) as export lines for a shell, serves until SIGINT or
// SIGTERM, and then shuts down cleanly. State lives in memory only.
//
// With -split the gateway, auth and audit APIs have listeners of their own.
// The default layout is then the "direct services" one that the SDKs derive
// from a base URL on port 8081: gateway 127.0.0.1:8081, auth :8082, audit
// :8084, so a client given only AGENTTRUST_URL=http://127.0.0.1:8081 finds
// the other two. -auth-addr and -audit-addr pin other addresses; when the
// gateway is not on port 8081 they default to ephemeral ports on its host,
// and the client needs the printed AGENTTRUST_AUTH_URL and
// AGENTTRUST_AUDIT_URL.
//
// Requests are refused before their body is read when the API key is
// missing or wrong, bodies are limited to 8 MiB, and a connection is cut
// when its headers take longer than -read-header-timeout, its whole request
// longer than -read-timeout, or it idles longer than -idle-timeout. The fake
// keeps a log of recent requests for tests in Go; this command bounds it to
// the last 256 requests and 16 MiB of bodies, so a long-running server does
// not grow.
//
// The flags -require-pop and -require-sender-constrained turn on the
// organisation security settings: WIMSE tokens then need a proof of
// possession, and action checks a WIMSE token with a DPoP proof. The
// proof's htu is compared byte for byte with the printed URL plus the path,
// so clients must use the printed URL as it is (127.0.0.1, not localhost).
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
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

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
	split := fs.Bool("split", false, "serve auth and audit APIs on listeners of their own (default layout 8081, 8082, 8084)")
	authAddr := fs.String("auth-addr", "", "auth listen address with -split (default: port 8082 when the gateway is on 8081, else ephemeral)")
	auditAddr := fs.String("audit-addr", "", "audit listen address with -split (default: port 8084 when the gateway is on 8081, else ephemeral)")
	def := agenttrusttest.DefaultTimeouts
	readHeader := fs.Duration("read-header-timeout", def.ReadHeader, "longest time to read a request's headers")
	read := fs.Duration("read-timeout", def.Read, "longest time to read a whole request, body included")
	idle := fs.Duration("idle-timeout", def.Idle, "longest time a keep-alive connection waits for the next request")
	requirePoP := fs.Bool("require-pop", false, "require proof of possession for WIMSE tokens")
	requireSC := fs.Bool("require-sender-constrained", false, "require a WIMSE token and DPoP proof on action checks")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if !*split && (set["auth-addr"] || set["audit-addr"]) {
		return errors.New("-auth-addr and -audit-addr need -split")
	}
	for name, d := range map[string]time.Duration{"read-header-timeout": *readHeader, "read-timeout": *read, "idle-timeout": *idle} {
		if d <= 0 {
			return fmt.Errorf("-%s must be positive, got %v", name, d)
		}
	}
	if *split && !set["addr"] {
		*addr = defaultSplitAddr
	}

	opts := []agenttrusttest.Option{
		agenttrusttest.WithAddr(*addr),
		agenttrusttest.WithRequestLogLimit(requestLogSize, requestLogBytes),
		agenttrusttest.WithTimeouts(agenttrusttest.Timeouts{ReadHeader: *readHeader, Read: *read, Idle: *idle}),
	}
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
		a, b := splitAddrs(*addr, *authAddr, *auditAddr)
		opts = append(opts, agenttrusttest.WithSplitAddrs(a, b))
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
	// Every URL is exported, also when equal to the gateway's: a client
	// would otherwise derive auth and audit URLs from a gateway on 8081.
	fmt.Fprintf(stdout, "export AGENTTRUST_URL=%s\n", srv.URL())
	fmt.Fprintf(stdout, "export AGENTTRUST_AUTH_URL=%s\n", srv.AuthURL())
	fmt.Fprintf(stdout, "export AGENTTRUST_AUDIT_URL=%s\n", srv.AuditURL())
	fmt.Fprintf(stdout, "export AGENTTRUST_API_KEY=%s\n", srv.APIKey())

	<-ctx.Done()
	fmt.Fprintln(stdout, "shutting down")
	return nil
}

// defaultSplitAddr is the gateway address with -split and no -addr: the
// "direct services" layout whose auth and audit URLs the SDKs derive.
const defaultSplitAddr = "127.0.0.1:8081"

// Bounds of the fake's request log, which nothing reads in this command.
const (
	requestLogSize  = 256
	requestLogBytes = 16 << 20
)

// splitAddrs returns the auth and audit listen addresses: the given ones,
// or, for a gateway on port 8081, the same host on 8082 and 8084 (the
// layout the SDKs derive from such a base URL), or "" (an ephemeral port on
// the gateway's host).
func splitAddrs(gateway, auth, audit string) (string, string) {
	host, port, err := net.SplitHostPort(gateway)
	if err != nil || port != "8081" {
		return auth, audit
	}
	if auth == "" {
		auth = net.JoinHostPort(host, "8082")
	}
	if audit == "" {
		audit = net.JoinHostPort(host, "8084")
	}
	return auth, audit
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
