package guard_test

import (
	"context"
	"fmt"
	"time"

	agenttrust "github.com/agenttrustid/agenttrust-go"
	"github.com/agenttrustid/agenttrust-go/agenttrusttest"
	"github.com/agenttrustid/agenttrust-go/guard"
)

// Close with a deadline. Here the gateway's telemetry endpoint hangs: Close
// gives up when its context ends, reports what its drain could not deliver,
// and Stats counts every event.
func ExampleGuard_Close() {
	srv, err := agenttrusttest.NewServer()
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	srv.InjectFault("POST /api/v1/telemetry/report", agenttrusttest.Fault{Latency: time.Hour})
	client, err := agenttrust.New(agenttrust.WithBaseURL(srv.URL()), agenttrust.WithAPIKey(srv.APIKey()))
	if err != nil {
		panic(err)
	}
	g, err := guard.New(client, srv.CreateAgent("example-agent"))
	if err != nil {
		panic(err)
	}
	g.Report(guard.ToolEnd("read_file", 12*time.Millisecond))

	// A few seconds suit a healthy gateway; this example's gateway never
	// answers, so it waits less.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := g.Close(ctx); err != nil {
		fmt.Println(err)
	}
	st := g.Stats()
	fmt.Printf("reported %d, sent %d, dropped %d, pending %d\n", st.Reported, st.Sent, st.Dropped, st.Pending)
	// Output:
	// agenttrust: telemetry: 1 events not delivered: context deadline exceeded
	// reported 1, sent 0, dropped 1, pending 0
}
