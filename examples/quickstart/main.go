// Command quickstart walks through the AgentTrust basics: register an agent,
// issue and introspect a token, ask the Guardian about two tools, report
// telemetry, revoke the token and watch introspection turn inactive.
//
// With no AGENTTRUST_URL set it starts the in-memory fake gateway
// in-process, with a policy that denies the tool named by -deny (default
// delete_database), so it runs on a fresh machine:
//
//	go run ./examples/quickstart
//
// With AGENTTRUST_URL (and AGENTTRUST_API_KEY, and AGENTTRUST_AUTH_URL and
// AGENTTRUST_AUDIT_URL where the services are split) set, it talks to that
// gateway, for instance the dev server (go run ./cmd/agenttrust-devserver)
// or a real deployment. It then makes no assumption about the gateway's
// policy: it says what the Guardian decided for each tool (allowed, denied,
// or waiting for a human approval). It fails only when something does not
// work: the gateway cannot be reached, a call is refused, a token does not
// behave as issued.
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
	deny := flag.String("deny", "delete_database", "the destructive tool to ask about (the embedded fake's policy denies it)")
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
// gateway with a policy that denies denyTool. Either way it asks about
// read_file and denyTool and reports the Guardian's decisions.
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
	// The gateway's policy decides; this program only reports the decision.
	// A check that gets no decision at all (gateway unreachable, refused
	// key) is a failure.
	ask := func(tool, input string, effect guard.Effect) (bool, error) {
		dec, err := g.Check(ctx, tool, guard.LengthSummary(input), guard.WithEffect(effect))
		var elevation *guard.ElevationRequiredError
		var denied *guard.DeniedError
		switch {
		case err == nil:
			step("%s: allowed (check %s, tier %s)", tool, dec.CheckID, dec.GuardTier)
			return true, nil
		case errors.As(err, &elevation):
			step("%s: needs a human approval (request %s): %s", tool, elevation.ApprovalID, orNone(elevation.Reason))
			return false, nil
		case errors.As(err, &denied):
			step("%s: denied: %s", tool, orNone(denied.Reason))
			return false, nil
		default:
			return false, fmt.Errorf("check %s: %w", tool, err)
		}
	}
	ran := 0
	for _, t := range []struct {
		tool, input string
		effect      guard.Effect
	}{
		{"read_file", "/var/log/app.log", agenttrust.EffectRead},
		{denyTool, "DROP DATABASE prod", agenttrust.EffectDestructive},
	} {
		allowed, err := ask(t.tool, t.input, t.effect)
		if err != nil {
			return err
		}
		if allowed {
			start := time.Now()
			// ... the tool would run here ...
			g.Report(guard.ToolEnd(t.tool, time.Since(start)))
			ran++
		}
	}

	fmt.Fprintln(out, "5. report telemetry and flush it")
	if err := g.Flush(ctx); err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	st := g.Stats()
	if st.Sent != st.Reported || st.Reported != uint64(ran) {
		return fmt.Errorf("telemetry: %d tool(s) ran, reported %d, sent %d, dropped %d", ran, st.Reported, st.Sent, st.Dropped)
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

func orNone(reason string) string {
	if reason == "" {
		return "(no reason given)"
	}
	return reason
}

func suffix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
