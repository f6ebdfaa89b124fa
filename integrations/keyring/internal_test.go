package agenttrustkeyring

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	agenttrust "github.com/agenttrustid/agenttrust-go"
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
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, agenttrust.ErrKeyStore) || !errors.Is(err, agenttrust.ErrAgentTrust) {
		t.Fatalf("err %v", err)
	}
	if errors.Is(err, ErrKeychain) || errors.Is(err, agenttrust.ErrKeyNotFound) {
		t.Fatalf("a deadline is not a keychain failure: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Sign waited %v", d)
	}
}

func TestContextEndsWhileTheKeychainCallRuns(t *testing.T) {
	s := New()
	release := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.call(ctx, func() { <-release }) }()
	// Wait until the call holds the keychain, then cancel.
	for len(backend) == 0 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("call did not return when its context ended")
	}
	// The abandoned call still holds the keychain until it finishes.
	if len(backend) != 1 {
		t.Fatal("keychain released before the call finished")
	}
	close(release)
	deadline := time.Now().Add(2 * time.Second)
	for len(backend) != 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if len(backend) != 0 {
		t.Fatal("keychain never released")
	}
}

func TestCancelledContextTouchesNothing(t *testing.T) {
	keyring.MockInit()
	s := New()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	pair, err := agenttrust.GenerateAgentKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Store(ctx, "agent-1", pair.PrivateKeyPEM); !errors.Is(err, context.Canceled) {
		t.Fatalf("Store: %v", err)
	}
	if _, err := keyring.Get(DefaultService, "agent-1"); !errors.Is(err, keyring.ErrNotFound) {
		t.Fatalf("entry written despite a cancelled context: %v", err)
	}
}
