package agenttrustotel_test

import (
	"context"
	"errors"
	"fmt"

	agenttrust "github.com/agenttrustid/agenttrust-go"
	"github.com/agenttrustid/agenttrust-go/agenttrusttest"
	"github.com/agenttrustid/agenttrust-go/guard"
	agenttrustotel "github.com/agenttrustid/agenttrust-go/integrations/otel"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// A guard check becomes a check span around its API call.
func ExampleNew() {
	srv, err := agenttrusttest.NewServer()
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	srv.DenyTool("delete_file", "no deletes")

	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	defer tp.Shutdown(context.Background())
	defer mp.Shutdown(context.Background())

	obs, err := agenttrustotel.New(agenttrustotel.WithTracerProvider(tp), agenttrustotel.WithMeterProvider(mp))
	if err != nil {
		panic(err)
	}
	client, err := agenttrust.New(agenttrust.WithBaseURL(srv.URL()), agenttrust.WithAPIKey(srv.APIKey()),
		agenttrust.WithObserver(obs))
	if err != nil {
		panic(err)
	}
	g, err := guard.New(client, srv.CreateAgent("bot"))
	if err != nil {
		panic(err)
	}
	defer g.Close(context.Background())
	_, err = g.Check(context.Background(), "delete_file", guard.LengthSummary("/etc/passwd"))
	var denied *guard.DeniedError
	if errors.As(err, &denied) {
		fmt.Println("denied:", denied.Reason)
	}
	for _, s := range spans.Ended() {
		for _, kv := range s.Attributes() {
			if kv.Key == agenttrustotel.AttrCheckOutcome || kv.Key == "url.template" {
				fmt.Println(s.Name(), kv.Key, kv.Value.AsString())
			}
		}
	}
	// Output:
	// denied: no deletes
	// agenttrust.actions.check url.template /api/v1/agenttrust/check
	// agenttrust.guard.check agenttrust.check.outcome denied
}
