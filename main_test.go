package agenttrust

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if any test leaves a goroutine behind: a cache fetch,
// a retry loop or an HTTP connection that outlives its test. Started with
// benchGatewayEnv set, the binary is the benchmarks' gateway process instead.
func TestMain(m *testing.M) {
	if kind := os.Getenv(benchGatewayEnv); kind != "" {
		os.Exit(serveBenchGateway(kind, os.Stdin, os.Stdout, os.Stderr))
	}
	goleak.VerifyTestMain(m)
}
