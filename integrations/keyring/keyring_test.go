package agenttrustkeyring_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	agenttrust "github.com/agenttrustid/agenttrust-go"
	agenttrustkeyring "github.com/agenttrustid/agenttrust-go/integrations/keyring"
	"github.com/zalando/go-keyring"
)

func newPair(t *testing.T) (agenttrust.AgentKeyPair, ed25519.PublicKey) {
	t.Helper()
	pair, err := agenttrust.GenerateAgentKey()
	if err != nil {
		t.Fatal(err)
	}
	pub, err := agenttrust.ParsePublicKeyPEM(pair.PublicKeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return pair, pub
}

// pemBody is the base64 body of a PEM: what must never leak.
func pemBody(p string) string {
	lines := strings.Split(strings.TrimSpace(p), "\n")
	if len(lines) < 3 {
		return p
	}
	return strings.Join(lines[1:len(lines)-1], "")
}

func TestStoreSignDelete(t *testing.T) {
	keyring.MockInit()
	ctx := context.Background()
	s := agenttrustkeyring.New()
	pair, pub := newPair(t)

	if err := s.Store(ctx, "agent-1", pair.PrivateKeyPEM); err != nil {
		t.Fatal(err)
	}
	// The entry uses the Python SDK's naming: service, account, PEM secret.
	got, err := keyring.Get("agenttrust-id", "agent-1")
	if err != nil || got != pair.PrivateKeyPEM {
		t.Fatalf("keychain entry %q, %v", got, err)
	}
	sig, err := s.Sign(ctx, "agent-1", []byte("pop-v1:n:agent-1::1"))
	if err != nil || !ed25519.Verify(pub, []byte("pop-v1:n:agent-1::1"), sig) {
		t.Fatalf("signature does not verify: %v", err)
	}

	if err := s.Delete(ctx, "agent-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := keyring.Get("agenttrust-id", "agent-1"); !errors.Is(err, keyring.ErrNotFound) {
		t.Fatalf("entry still there: %v", err)
	}
	_, err = s.Sign(ctx, "agent-1", []byte("x"))
	if !errors.Is(err, agenttrust.ErrKeyNotFound) || !errors.Is(err, agenttrust.ErrAgentTrust) || errors.Is(err, agenttrustkeyring.ErrKeychain) {
		t.Fatalf("Sign after Delete: %v", err)
	}
	if err := s.Delete(ctx, "agent-1"); err != nil {
		t.Fatalf("Delete of an unknown agent: %v", err)
	}
}

func TestStoreReplaces(t *testing.T) {
	keyring.MockInit()
	ctx := context.Background()
	s := agenttrustkeyring.New()
	first, _ := newPair(t)
	second, pub := newPair(t)
	if err := s.Store(ctx, "a", first.PrivateKeyPEM); err != nil {
		t.Fatal(err)
	}
	if err := s.Store(ctx, "a", second.PrivateKeyPEM); err != nil {
		t.Fatal(err)
	}
	sig, err := s.Sign(ctx, "a", []byte("m"))
	if err != nil || !ed25519.Verify(pub, []byte("m"), sig) {
		t.Fatalf("Sign did not use the replacing key: %v", err)
	}
}

func TestStoreValidatesBeforeTouchingTheKeychain(t *testing.T) {
	keyring.MockInit()
	ctx := context.Background()
	s := agenttrustkeyring.New()
	pair, _ := newPair(t)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	rsaDER, _ := x509.MarshalPKCS8PrivateKey(rsaKey)
	rsaPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: rsaDER}))
	for name, bad := range map[string]string{
		"empty":      "",
		"not PEM":    "hello",
		"public key": pair.PublicKeyPEM,
		"RSA key":    rsaPEM,
	} {
		t.Run(name, func(t *testing.T) {
			err := s.Store(ctx, "agent-1", bad)
			var ve *agenttrust.ValidationError
			if !errors.As(err, &ve) || !errors.Is(err, agenttrust.ErrValidation) {
				t.Fatalf("err %v, want a validation error", err)
			}
			if _, err := keyring.Get("agenttrust-id", "agent-1"); !errors.Is(err, keyring.ErrNotFound) {
				t.Fatal("an invalid key reached the keychain")
			}
			if body := pemBody(bad); len(body) >= 20 && strings.Contains(fmt.Sprintf("%v %+v %#v", err, err, err), body[:20]) {
				t.Fatal("error contains the key")
			}
		})
	}
	for name, err := range map[string]error{
		"Store":  s.Store(ctx, "", pair.PrivateKeyPEM),
		"Delete": s.Delete(ctx, ""),
		"Sign":   func() error { _, err := s.Sign(ctx, "", []byte("x")); return err }(),
	} {
		if !errors.Is(err, agenttrust.ErrValidation) {
			t.Errorf("%s with an empty agent id: %v", name, err)
		}
	}
}

func TestReadsEntriesWrittenByOtherSDKs(t *testing.T) {
	keyring.MockInit()
	ctx := context.Background()
	s := agenttrustkeyring.New()
	pair, pub := newPair(t)

	// The Python SDK's KeychainKeyStore writes the PEM as the secret.
	if err := keyring.Set("agenttrust-id", "py-agent", pair.PrivateKeyPEM); err != nil {
		t.Fatal(err)
	}
	// macOS's security tool prints such a multi-line secret hex-encoded.
	if err := keyring.Set("agenttrust-id", "mac-agent", hex.EncodeToString([]byte(pair.PrivateKeyPEM))); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"py-agent", "mac-agent"} {
		sig, err := s.Sign(ctx, id, []byte("m"))
		if err != nil || !ed25519.Verify(pub, []byte("m"), sig) {
			t.Fatalf("%s: %v", id, err)
		}
	}
}

func TestServiceName(t *testing.T) {
	keyring.MockInit()
	ctx := context.Background()
	pair, _ := newPair(t)
	custom := agenttrustkeyring.New(agenttrustkeyring.WithService("my-app"))
	if custom.Service() != "my-app" || agenttrustkeyring.New(agenttrustkeyring.WithService("")).Service() != "agenttrust-id" {
		t.Fatal("service names")
	}
	if err := custom.Store(ctx, "a", pair.PrivateKeyPEM); err != nil {
		t.Fatal(err)
	}
	if _, err := keyring.Get("my-app", "a"); err != nil {
		t.Fatalf("entry not under the custom service: %v", err)
	}
	if _, err := agenttrustkeyring.New().Sign(ctx, "a", []byte("m")); !errors.Is(err, agenttrust.ErrKeyNotFound) {
		t.Fatalf("default service sees the custom one's key: %v", err)
	}
}

func TestCorruptEntry(t *testing.T) {
	keyring.MockInit()
	pair, _ := newPair(t)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 1024)
	rsaDER, _ := x509.MarshalPKCS8PrivateKey(rsaKey)
	rsaPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: rsaDER}))
	for name, secret := range map[string]string{"garbage": "s3cr3t-not-a-pem", "RSA": rsaPEM, "public": pair.PublicKeyPEM} {
		if err := keyring.Set("agenttrust-id", "a", secret); err != nil {
			t.Fatal(err)
		}
		_, err := agenttrustkeyring.New().Sign(context.Background(), "a", []byte("m"))
		if !errors.Is(err, agenttrust.ErrKeyStore) || !errors.Is(err, agenttrust.ErrAgentTrust) ||
			errors.Is(err, agenttrust.ErrKeyNotFound) || errors.Is(err, agenttrustkeyring.ErrKeychain) {
			t.Fatalf("%s entry: %v", name, err)
		}
		leak := secret
		if strings.HasPrefix(secret, "-----") {
			leak = pemBody(secret)[:20]
		}
		if strings.Contains(fmt.Sprintf("%v %+v %#v %s %q", err, err, err, err, err), leak) {
			t.Fatalf("%s: error shows the secret: %v", name, err)
		}
	}
}

func TestKeychainFailures(t *testing.T) {
	cause := errors.New("org.freedesktop.DBus.Error.ServiceUnknown: The name org.freedesktop.secrets was not provided")
	keyring.MockInitWithError(cause)
	defer keyring.MockInit()
	ctx := context.Background()
	s := agenttrustkeyring.New()
	pair, _ := newPair(t)
	_, signErr := s.Sign(ctx, "a", []byte("m"))
	for name, err := range map[string]error{
		"Store":  s.Store(ctx, "a", pair.PrivateKeyPEM),
		"Sign":   signErr,
		"Delete": s.Delete(ctx, "a"),
	} {
		if !errors.Is(err, agenttrustkeyring.ErrKeychain) || !errors.Is(err, agenttrust.ErrKeyStore) ||
			!errors.Is(err, agenttrust.ErrAgentTrust) || !errors.Is(err, cause) || errors.Is(err, agenttrust.ErrKeyNotFound) {
			t.Errorf("%s: %v is not a typed keychain failure", name, err)
			continue
		}
		var ae *agenttrust.AgentTrustError
		if !errors.As(err, &ae) || ae.Code != agenttrust.CodeKeyStore || ae.Status != 0 {
			t.Errorf("%s: %#v", name, err)
		}
		if msg := err.Error(); !strings.Contains(msg, "OS keychain unavailable or failed") || !strings.Contains(msg, `"a"`) ||
			strings.Contains(msg, pemBody(pair.PrivateKeyPEM)[:20]) {
			t.Errorf("%s: message %q", name, msg)
		}
	}
}

func TestStoreNeverPrintsKeys(t *testing.T) {
	keyring.MockInit()
	s := agenttrustkeyring.New()
	pair, _ := newPair(t)
	if err := s.Store(context.Background(), "a", pair.PrivateKeyPEM); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("store", "ks", s)
	out := fmt.Sprintf("%v %+v %#v %s %q", s, s, s, s, s) + logs.String()
	if strings.Contains(out, pemBody(pair.PrivateKeyPEM)[:20]) || !strings.Contains(logs.String(), "agenttrust-id") {
		t.Fatalf("output %s", out)
	}
}

func TestConcurrentUse(t *testing.T) {
	keyring.MockInit()
	ctx := context.Background()
	s := agenttrustkeyring.New()
	pair, pub := newPair(t)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			id := fmt.Sprintf("agent-%d", i)
			if err := s.Store(ctx, id, pair.PrivateKeyPEM); err != nil {
				errs <- err
				return
			}
			for j := 0; j < 4; j++ {
				sig, err := s.Sign(ctx, id, []byte(id))
				if err != nil || !ed25519.Verify(pub, []byte(id), sig) {
					errs <- fmt.Errorf("%s: %v", id, err)
				}
			}
			if err := s.Delete(ctx, id); err != nil {
				errs <- err
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
