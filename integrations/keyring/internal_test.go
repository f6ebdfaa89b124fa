package agenttrustkeyring

import (
	"context"
	"os"
	"testing"
	"time"

	agenttrust "github.com/agenttrustid/agenttrust-go"
	"github.com/stretchr/testify/require"
	"github.com/zalando/go-keyring"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// The OS keychain probe runs in a child process of the test binary,
	// because keyring.MockInit (used by the other tests) replaces the
	// keychain backend for the rest of the process.
	if os.Getenv(osProbeEnv) == "1" {
		os.Exit(runOSProbe())
	}
	goleak.VerifyTestMain(m)
}

func TestContextEndsWhileWaitingForTheKeychain(t *testing.T) {
	keyring.MockInit()
	s := New()
	backend <- struct{}{} // another call holds the keychain
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := s.Sign(ctx, "agent-1", []byte("x"))
	<-backend
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.ErrorIs(t, err, agenttrust.ErrKeyStore)
	require.ErrorIs(t, err, agenttrust.ErrAgentTrust)
	require.NotErrorIs(t, err, ErrKeychain, "a deadline is not a keychain failure")
	require.NotErrorIs(t, err, agenttrust.ErrKeyNotFound, "a deadline is not a keychain failure")
	require.LessOrEqual(t, time.Since(start), 2*time.Second, "Sign waited too long")
}

func TestContextEndsWhileTheKeychainCallRuns(t *testing.T) {
	s := New()
	release := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	running := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		errc <- s.call(ctx, func() {
			close(running)
			<-release
		})
	}()
	// fn runs only once the call holds the keychain: cancel then.
	select {
	case <-running:
	case <-time.After(2 * time.Second):
		require.FailNow(t, "call never started")
	}
	require.Len(t, backend, 1, "call runs without holding the keychain")
	cancel()
	select {
	case err := <-errc:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(2 * time.Second):
		require.FailNow(t, "call did not return when its context ended")
	}
	// The abandoned call still holds the keychain until it finishes.
	require.Len(t, backend, 1, "keychain released before the call finished")
	close(release)
	require.Eventually(t, func() bool { return len(backend) == 0 }, 2*time.Second, time.Millisecond, "keychain never released")
}

func TestCancelledContextTouchesNothing(t *testing.T) {
	keyring.MockInit()
	s := New()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	pair, err := agenttrust.GenerateAgentKey()
	require.NoError(t, err)
	require.ErrorIs(t, s.Store(ctx, "agent-1", pair.PrivateKeyPEM), context.Canceled, "Store")
	_, err = keyring.Get(DefaultService, "agent-1")
	require.ErrorIs(t, err, keyring.ErrNotFound, "entry written despite a cancelled context")
}
