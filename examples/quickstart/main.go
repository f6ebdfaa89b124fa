// Command quickstart walks through the AgentTrust basics: register an agent,
// issue and introspect a token, ask the Guardian about an allowed and a
// denied tool, report telemetry, revoke the token and watch introspection
// turn inactive.
//
// With no AGENTTRUST_URL set it starts the in-memory fake gateway
// in-process, so it runs on a fresh machine:
//
//	go run ./examples/quickstart
//
// With AGENTTRUST_URL (and AGENTTRUST_API_KEY) set it talks to that gateway;
// -deny names a tool the gateway's policy denies.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	agenttrust "github.com/agenttrustid/agenttrust-go"
	"github.com/agenttrustid/agenttrust-go/agenttrusttest"
	"github.com/agenttrustid/agenttrust-go/guard"
)

func main() {
	deny := flag.String("deny", "delete_database", "a tool the gateway's policy denies")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := run(ctx, os.Stdout, os.Getenv("AGENTTRUST_URL") != "", *deny); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart failed:", err)
		os.Exit(1)
	}
}

// run performs the walkthrough, writing a transcript to out. With useEnv it
// configures the client from the environment; otherwise it starts the fake
// gateway with a policy that denies denyTool.
func run(ctx context.Context, out io.Writer, useEnv bool, denyTool string) error {
	step := func(format string, args ...any) { fmt.Fprintf(out, "  "+format+"\n", args...) }

	var c *agenttrust.Client
	var err error
	if useEnv {
		c, err = agenttrust.FromEnv()
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "gateway: %s\n", c.BaseURL())
	} else {
		srv, err := agenttrusttest.NewServer(agenttrusttest.WithPolicy(agenttrusttest.Policy{
			Deny: map[string]string{denyTool: "destructive operations need a human"},
		}))
		if err != nil {
			return err
		}
		defer srv.Close()
		c, err = agenttrust.New(agenttrust.WithBaseURL(srv.URL()), agenttrust.WithAPIKey(srv.APIKey()))
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "gateway: in-memory fake at %s (set AGENTTRUST_URL to use a real one)\n", c.BaseURL())
	}

	fmt.Fprintln(out, "1. register an agent")
	agent, err := c.Agents.Create(ctx, agenttrust.AgentCreateParams{
		Name:         "quickstart-" + suffix(),
		Framework:    agenttrust.FrameworkCustom,
		Capabilities: []string{"read_files"},
	})
	if err != nil {
		return fmt.Errorf("register: %w", err)
	}
	step("agent %s (%s), status %s", agent.ID, agent.Name, agent.Status)

	fmt.Fprintln(out, "2. issue a token")
	tok, err := c.Tokens.Issue(ctx, agenttrust.TokenIssueParams{AgentID: agent.ID, Scopes: []string{"read_files"}, TTLSeconds: 300})
	if err != nil {
		return fmt.Errorf("issue: %w", err)
	}
	step("%v, %s left", tok, tok.TTL()) // printing a Token never shows the token itself

	fmt.Fprintln(out, "3. introspect it")
	in, err := c.Tokens.Introspect(ctx, agenttrust.TokenIntrospectParams{Token: tok.Token, RequiredScopes: []string{"read_files"}})
	if err != nil {
		return fmt.Errorf("introspect: %w", err)
	}
	if !in.Active || in.AgentID != agent.ID {
		return fmt.Errorf("introspect: want an active token of %s, got active=%v agent=%q (%s)", agent.ID, in.Active, in.AgentID, in.Reasoning)
	}
	step("active, agent %s, scopes %v", in.AgentID, in.Scopes)

	fmt.Fprintln(out, "4. ask the Guardian")
	g, err := guard.New(c, agent.ID)
	if err != nil {
		return err
	}
	defer g.Close(context.WithoutCancel(ctx))
	dec, err := g.Check(ctx, "read_file", guard.LengthSummary("/var/log/app.log"), guard.WithEffect(agenttrust.EffectRead))
	if err != nil {
		return fmt.Errorf("check read_file: %w", err)
	}
	step("read_file: allowed (check %s, tier %s)", dec.CheckID, dec.GuardTier)
	start := time.Now()
	g.Report(guard.ToolEnd("read_file", time.Since(start))) // the tool ran

	_, err = g.Check(ctx, denyTool, guard.LengthSummary("DROP DATABASE prod"), guard.WithEffect(agenttrust.EffectDestructive))
	var denied *guard.DeniedError
	if !errors.As(err, &denied) {
		return fmt.Errorf("check %s: want a denial, got %v", denyTool, err)
	}
	step("%s: denied: %s", denyTool, denied.Reason)

	fmt.Fprintln(out, "5. report telemetry and flush it")
	if err := g.Flush(ctx); err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	st := g.Stats()
	if st.Sent != st.Reported || st.Reported == 0 {
		return fmt.Errorf("telemetry: reported %d, sent %d, dropped %d", st.Reported, st.Sent, st.Dropped)
	}
	step("%d event(s) delivered, session %s", st.Sent, g.SessionID())

	fmt.Fprintln(out, "6. revoke the token")
	if err := c.Tokens.Revoke(ctx, tok.Token, "quickstart done"); err != nil {
		return fmt.Errorf("revoke: %w", err)
	}
	in, err = c.Tokens.Introspect(ctx, agenttrust.TokenIntrospectParams{Token: tok.Token})
	if err != nil {
		return fmt.Errorf("introspect after revoke: %w", err)
	}
	if in.Active {
		return errors.New("introspect after revoke: token is still active")
	}
	step("inactive now: %s", in.Reasoning)

	if err := g.Close(ctx); err != nil {
		return fmt.Errorf("close guard: %w", err)
	}
	fmt.Fprintln(out, "done.")
	return nil
}

func suffix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
