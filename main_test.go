package agenttrust

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if any test leaves a goroutine behind: a cache fetch,
// a retry loop or an HTTP connection that outlives its test.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
