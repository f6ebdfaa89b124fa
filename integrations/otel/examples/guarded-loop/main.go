// Command guarded-loop runs a small guarded agent loop with OpenTelemetry:
// every guard check and API call becomes a span, and the decisions, check
// latencies, fail-opens, telemetry and cache metrics are printed by the
// stdout exporters when the program ends.
//
// With no AGENTTRUST_URL set it starts the in-memory fake gateway
// in-process, with a policy that denies one tool and asks for approval for
// another, and makes the Guardian unavailable for one step so that the
// guard fails open:
//
//	go run ./integrations/otel/examples/guarded-loop
//
// With AGENTTRUST_URL, AGENTTRUST_API_KEY and -agent set it talks to that
// gateway instead (the unavailable step is skipped).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	agenttrust "github.com/agenttrustid/agenttrust-go"
	"github.com/agenttrustid/agenttrust-go/agenttrusttest"
	"github.com/agenttrustid/agenttrust-go/guard"
	agenttrustotel "github.com/agenttrustid/agenttrust-go/integrations/otel"
	"go.opentelemetry.io/otel/exporters/stdout/stdoutmetric"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

func main() {
	agentID := flag.String("agent", "", "agent id on a real gateway (AGENTTRUST_URL)")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := run(ctx, os.Stdout, os.Stderr, *agentID); err != nil {
		fmt.Fprintln(os.Stderr, "guarded-loop failed:", err)
		os.Exit(1)
	}
}

// step is one tool call the agent wants to make.
type step struct {
	tool, input string
	outage      bool // the Guardian is unavailable for this step (fake only)
}

var plan = []step{
	{tool: "read_file", input: "/srv/reports/q3.csv"},
	{tool: "summarize", input: "q3.csv"},
	{tool: "delete_file", input: "/srv/reports/q3.csv"},
	{tool: "send_email", input: "cfo@example.com"},
	{tool: "read_file", input: "/srv/reports/q4.csv", outage: true},
}

// run executes the plan, writing the agent's transcript to log and the
// exported spans and metrics to telemetry.
func run(ctx context.Context, telemetry, log io.Writer, agentID string) (err error) {
	// OpenTelemetry: spans and metrics to stdout, written when the
	// providers shut down at the end.
	spanExp, err := stdouttrace.New(stdouttrace.WithWriter(telemetry))
	if err != nil {
		return err
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(spanExp))
	metricExp, err := stdoutmetric.New(stdoutmetric.WithWriter(telemetry))
	if err != nil {
		return err
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewPeriodicReader(metricExp)))
	defer func() {
		// Shutting down flushes the spans and collects the metrics once.
		err = errors.Join(err, tp.Shutdown(context.Background()), mp.Shutdown(context.Background()))
	}()
	obs, err := agenttrustotel.New(agenttrustotel.WithTracerProvider(tp), agenttrustotel.WithMeterProvider(mp))
	if err != nil {
		return err
	}

	var srv *agenttrusttest.Server
	var c *agenttrust.Client
	if os.Getenv("AGENTTRUST_URL") != "" {
		if agentID == "" {
			return errors.New("-agent is required with AGENTTRUST_URL")
		}
		if c, err = agenttrust.FromEnv(agenttrust.WithObserver(obs)); err != nil {
			return err
		}
	} else {
		srv, err = agenttrusttest.NewServer(agenttrusttest.WithPolicy(agenttrusttest.Policy{
			Deny: map[string]string{"delete_file": "deleting reports needs a human"},
		}))
		if err != nil {
			return err
		}
		defer srv.Close()
		srv.RequireElevation("send_email")
		agentID = srv.CreateAgent("report-bot")
		c, err = agenttrust.New(agenttrust.WithBaseURL(srv.URL()), agenttrust.WithAPIKey(srv.APIKey()),
			agenttrust.WithObserver(obs), agenttrust.WithRetryPolicy(agenttrust.RetryPolicy{MaxRetries: 1,
				InitialBackoff: 10 * time.Millisecond, MaxBackoff: 10 * time.Millisecond}))
		if err != nil {
			return err
		}
	}

	// The guard fails open here so that the outage step shows up in the
	// failed-open counter; production agents usually keep the default.
	g, err := guard.New(c, agentID, guard.WithFailOpen(true))
	if err != nil {
		return err
	}
	for _, s := range plan {
		if s.outage {
			if srv == nil {
				continue
			}
			srv.InjectFault("POST /api/v1/agenttrust/check", agenttrusttest.Fault{Status: 503})
		}
		d, err := g.Check(ctx, s.tool, guard.LengthSummary(s.input))
		if srv != nil {
			srv.ClearFaults()
		}
		var denied *guard.DeniedError
		var elevation *guard.ElevationRequiredError
		switch {
		case errors.As(err, &denied):
			fmt.Fprintf(log, "%-12s denied: %s\n", s.tool, denied.Reason)
			continue
		case errors.As(err, &elevation):
			fmt.Fprintf(log, "%-12s waiting for approval %s\n", s.tool, elevation.ApprovalID)
			continue
		case err != nil:
			return err
		}
		start := time.Now()
		time.Sleep(2 * time.Millisecond) // the tool's work
		g.Report(guard.ToolEnd(s.tool, time.Since(start)))
		if d.FailedOpen {
			fmt.Fprintf(log, "%-12s ran (Guardian unavailable, failed open)\n", s.tool)
		} else {
			fmt.Fprintf(log, "%-12s ran (check %s, tier %s)\n", s.tool, d.CheckID, d.GuardTier)
		}
	}
	if err := g.Close(ctx); err != nil {
		return err
	}
	st := g.Stats()
	fmt.Fprintf(log, "checks %d, denied %d, failed open %d, telemetry sent %d, dropped %d\n",
		st.Checks, st.Denied, st.FailedOpen, st.Sent, st.Dropped)
	return nil
}
