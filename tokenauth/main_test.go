package tokenauth_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if any test leaves a goroutine behind: an
// introspection, a waiter on a shared one, or a connection.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
