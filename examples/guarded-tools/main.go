// Command guarded-tools is an agent loop without a framework: before each
// tool call it asks the Guardian, runs the tool only when allowed, and
// reports what the tool did. One tool is denied by policy; another needs an
// elevation, which is approved while the agent waits.
//
// Without AGENTTRUST_URL it starts the fake gateway (agenttrusttest) in
// process, so it runs offline:
//
//	go run ./examples/guarded-tools
//
// With AGENTTRUST_URL (and AGENTTRUST_API_KEY) set it talks to that gateway
// through agenttrust.FromEnv and registers a demo agent; the gateway's policy
// must then deny delete_file and require elevation for send_email. It exits
// with status 1 when a step does not behave as expected.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"

	agenttrust "github.com/agenttrustid/agenttrust-go"
	"github.com/agenttrustid/agenttrust-go/agenttrusttest"
	"github.com/agenttrustid/agenttrust-go/guard"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "guarded-tools:", err)
		os.Exit(1)
	}
}

// tool is one of the agent's tools.
type tool struct {
	name   string
	effect guard.Effect
	run    func(ctx context.Context, input string) (string, error)
}

// step is what the (scripted) model asks for, and what must happen.
type step struct {
	tool, input string
	want        string // "ran", "failed", "denied" or "elevated"
}

var tools = map[string]tool{
	"read_file": {name: "read_file", effect: guard.EffectRead, run: func(_ context.Context, in string) (string, error) {
		return "127.0.0.1 localhost", nil
	}},
	"delete_file": {name: "delete_file", effect: guard.EffectDestructive, run: func(_ context.Context, in string) (string, error) {
		return "deleted " + in, nil
	}},
	"send_email": {name: "send_email", effect: guard.EffectMutating, run: func(_ context.Context, in string) (string, error) {
		return "sent", nil
	}},
	"fetch_url": {name: "fetch_url", effect: guard.EffectRead, run: func(_ context.Context, in string) (string, error) {
		return "", &os.PathError{Op: "fetch", Path: in, Err: errors.New("connection refused")}
	}},
}

var plan = []step{
	{"read_file", "/etc/hosts", "ran"},
	{"delete_file", "/etc/passwd", "denied"},
	{"send_email", "to=boss@example.com subject=report", "elevated"},
	{"fetch_url", "https://example.invalid/", "failed"},
}

// run executes the plan against the gateway chosen by the environment and
// writes a short transcript to out.
func run(ctx context.Context, out io.Writer) error {
	client, agentID, done, err := connect(ctx)
	if err != nil {
		return err
	}
	defer done()

	g, err := guard.New(client, agentID)
	if err != nil {
		return err
	}
	defer g.Close(context.Background()) // a no-op after the Close below
	fmt.Fprintf(out, "agent %s, session %s\n", agentID, g.SessionID())

	for i, s := range plan {
		got, err := callTool(ctx, g, client, out, tools[s.tool], s.input)
		if err != nil {
			return fmt.Errorf("step %d (%s): %w", i+1, s.tool, err)
		}
		if got != s.want {
			return fmt.Errorf("step %d (%s): %s, want %s", i+1, s.tool, got, s.want)
		}
	}

	closeCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := g.Close(closeCtx); err != nil {
		return fmt.Errorf("telemetry: %w", err)
	}
	st := g.Stats()
	fmt.Fprintf(out, "checks %d, denied %d; telemetry: %d events sent, %d dropped\n", st.Checks, st.Denied, st.Sent, st.Dropped)
	if st.Sent != st.Reported || st.Dropped != 0 {
		return fmt.Errorf("telemetry not fully delivered: %+v", st)
	}
	return nil
}

// callTool checks, runs and reports one tool call and says what happened.
func callTool(ctx context.Context, g *guard.Guard, client *agenttrust.Client, out io.Writer, t tool, input string) (string, error) {
	d, err := g.Check(ctx, t.name, guard.LengthSummary(input), guard.WithEffect(t.effect))
	var elev *guard.ElevationRequiredError
	switch {
	case errors.As(err, &elev): // test elevation before denial
		fmt.Fprintf(out, "%-11s needs approval %s; waiting\n", t.name, elev.ApprovalID)
		approved := approveLater(ctx, client, elev.ApprovalID)
		waitCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		a, err := g.WaitForApproval(waitCtx, elev.ApprovalID, guard.WithPollInterval(20*time.Millisecond))
		cancel()
		if aerr := <-approved; aerr != nil {
			return "", fmt.Errorf("approving: %w", aerr)
		}
		if err != nil {
			return "", err
		}
		if a.Status != agenttrust.ApprovalApproved {
			return "", fmt.Errorf("approval %s", a.Status)
		}
		fmt.Fprintf(out, "%-11s approved by %s; checking again\n", t.name, a.DecidedBy)
		if got, err := callTool(ctx, g, client, out, t, input); err != nil || got != "ran" {
			return got, err
		}
		return "elevated", nil
	case errors.Is(err, guard.ErrDenied):
		fmt.Fprintf(out, "%-11s denied: %s\n", t.name, d.Reason)
		return "denied", nil
	case err != nil:
		return "", err
	case !d.Allowed:
		return "", errors.New("not allowed without an error")
	}
	start := time.Now()
	res, err := t.run(ctx, input)
	if err != nil {
		g.Report(guard.ToolError(t.name, time.Since(start), err))
		fmt.Fprintf(out, "%-11s failed (%s)\n", t.name, guard.ErrorTypeOf(err))
		return "failed", nil
	}
	g.Report(guard.ToolEnd(t.name, time.Since(start)))
	fmt.Fprintf(out, "%-11s ran: %s\n", t.name, res)
	return "ran", nil
}

// approveLater plays the human operator: it approves the request shortly
// after the agent started waiting, and reports the outcome on the channel.
func approveLater(ctx context.Context, client *agenttrust.Client, approvalID string) <-chan error {
	errc := make(chan error, 1)
	go func() {
		select {
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			errc <- ctx.Err()
			return
		}
		_, err := client.Approvals.Approve(ctx, approvalID, "demo-operator")
		errc <- err
	}()
	return errc
}

// connect returns a client for the gateway named by the environment, or
// for an in-process fake gateway when AGENTTRUST_URL is unset.
func connect(ctx context.Context) (*agenttrust.Client, string, func(), error) {
	if os.Getenv("AGENTTRUST_URL") != "" {
		client, err := agenttrust.FromEnv()
		if err != nil {
			return nil, "", nil, err
		}
		a, err := client.Agents.Create(ctx, agenttrust.AgentCreateParams{Name: fmt.Sprintf("guarded-tools-demo-%d", time.Now().Unix())})
		if err != nil {
			return nil, "", nil, err
		}
		return client, a.ID, func() {}, nil
	}
	srv, err := agenttrusttest.NewServer()
	if err != nil {
		return nil, "", nil, err
	}
	srv.DenyTool("delete_file", "destructive tools are not allowed")
	srv.RequireElevation("send_email")
	agentID := srv.CreateAgent("guarded-tools-demo")
	client, err := agenttrust.New(
		agenttrust.WithBaseURL(srv.URL()),
		agenttrust.WithAuthURL(srv.AuthURL()),
		agenttrust.WithAuditURL(srv.AuditURL()),
		agenttrust.WithAPIKey(srv.APIKey()),
	)
	if err != nil {
		srv.Close()
		return nil, "", nil, err
	}
	return client, agentID, srv.Close, nil
}
