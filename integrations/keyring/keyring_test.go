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
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/zalando/go-keyring"
)

func newPair(t *testing.T) (agenttrust.AgentKeyPair, ed25519.PublicKey) {
	t.Helper()
	pair, err := agenttrust.GenerateAgentKey()
	require.NoError(t, err)
	pub, err := agenttrust.ParsePublicKeyPEM(pair.PublicKeyPEM)
	require.NoError(t, err)
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

	require.NoError(t, s.Store(ctx, "agent-1", pair.PrivateKeyPEM))
	// The entry uses the Python SDK's naming: service, account, PEM secret.
	got, err := keyring.Get("agenttrust-id", "agent-1")
	require.NoError(t, err, "keychain entry")
	require.Equal(t, pair.PrivateKeyPEM, got, "keychain entry")
	sig, err := s.Sign(ctx, "agent-1", []byte("pop-v1:n:agent-1::1"))
	require.NoError(t, err)
	require.True(t, ed25519.Verify(pub, []byte("pop-v1:n:agent-1::1"), sig), "signature does not verify")

	require.NoError(t, s.Delete(ctx, "agent-1"))
	_, err = keyring.Get("agenttrust-id", "agent-1")
	require.ErrorIs(t, err, keyring.ErrNotFound, "entry still there")
	_, err = s.Sign(ctx, "agent-1", []byte("x"))
	require.ErrorIs(t, err, agenttrust.ErrKeyNotFound, "Sign after Delete")
	require.ErrorIs(t, err, agenttrust.ErrAgentTrust, "Sign after Delete")
	require.NotErrorIs(t, err, agenttrustkeyring.ErrKeychain, "Sign after Delete")
	require.NoError(t, s.Delete(ctx, "agent-1"), "Delete of an unknown agent")
}

func TestStoreReplaces(t *testing.T) {
	keyring.MockInit()
	ctx := context.Background()
	s := agenttrustkeyring.New()
	first, _ := newPair(t)
	second, pub := newPair(t)
	require.NoError(t, s.Store(ctx, "a", first.PrivateKeyPEM))
	require.NoError(t, s.Store(ctx, "a", second.PrivateKeyPEM))
	sig, err := s.Sign(ctx, "a", []byte("m"))
	require.NoError(t, err)
	require.True(t, ed25519.Verify(pub, []byte("m"), sig), "Sign did not use the replacing key")
}

func TestStoreValidatesBeforeTouchingTheKeychain(t *testing.T) {
	keyring.MockInit()
	ctx := context.Background()
	s := agenttrustkeyring.New()
	pair, _ := newPair(t)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 1024)
	require.NoError(t, err)
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
			require.ErrorAs(t, err, &ve, "want a validation error")
			require.ErrorIs(t, err, agenttrust.ErrValidation, "want a validation error")
			_, getErr := keyring.Get("agenttrust-id", "agent-1")
			require.ErrorIs(t, getErr, keyring.ErrNotFound, "an invalid key reached the keychain")
			if body := pemBody(bad); len(body) >= 20 {
				require.NotContains(t, fmt.Sprintf("%v %+v %#v", err, err, err), body[:20], "error contains the key")
			}
		})
	}
	for name, err := range map[string]error{
		"Store":  s.Store(ctx, "", pair.PrivateKeyPEM),
		"Delete": s.Delete(ctx, ""),
		"Sign":   func() error { _, err := s.Sign(ctx, "", []byte("x")); return err }(),
	} {
		assert.ErrorIs(t, err, agenttrust.ErrValidation, "%s with an empty agent id", name)
	}
}

func TestReadsEntriesWrittenByOtherSDKs(t *testing.T) {
	keyring.MockInit()
	ctx := context.Background()
	s := agenttrustkeyring.New()
	pair, pub := newPair(t)

	// The Python SDK's KeychainKeyStore writes the PEM as the secret.
	require.NoError(t, keyring.Set("agenttrust-id", "py-agent", pair.PrivateKeyPEM))
	// macOS's security tool prints such a multi-line secret hex-encoded.
	require.NoError(t, keyring.Set("agenttrust-id", "mac-agent", hex.EncodeToString([]byte(pair.PrivateKeyPEM))))
	for _, id := range []string{"py-agent", "mac-agent"} {
		sig, err := s.Sign(ctx, id, []byte("m"))
		require.NoError(t, err, id)
		require.True(t, ed25519.Verify(pub, []byte("m"), sig), "%s: signature does not verify", id)
	}
}

func TestServiceName(t *testing.T) {
	keyring.MockInit()
	ctx := context.Background()
	pair, _ := newPair(t)
	custom := agenttrustkeyring.New(agenttrustkeyring.WithService("my-app"))
	require.Equal(t, "my-app", custom.Service(), "service names")
	require.Equal(t, "agenttrust-id", agenttrustkeyring.New(agenttrustkeyring.WithService("")).Service(), "service names")
	require.NoError(t, custom.Store(ctx, "a", pair.PrivateKeyPEM))
	_, err := keyring.Get("my-app", "a")
	require.NoError(t, err, "entry not under the custom service")
	_, err = agenttrustkeyring.New().Sign(ctx, "a", []byte("m"))
	require.ErrorIs(t, err, agenttrust.ErrKeyNotFound, "default service sees the custom one's key")
}

// The zero value and a nil *KeyStore are the default store, not a panic
// or a store under an empty service name.
func TestZeroAndNilStores(t *testing.T) {
	keyring.MockInit()
	ctx := context.Background()
	pair, pub := newPair(t)
	for name, ks := range map[string]*agenttrustkeyring.KeyStore{"zero": {}, "nil": nil} {
		require.Equal(t, agenttrustkeyring.DefaultService, ks.Service(), name)
		assert.Contains(t, ks.String(), `"agenttrust-id"`, name)
		require.NoError(t, ks.Store(ctx, "z-"+name, pair.PrivateKeyPEM), name)
		_, err := keyring.Get(agenttrustkeyring.DefaultService, "z-"+name)
		require.NoError(t, err, "%s: entry not under the default service", name)
		sig, err := ks.Sign(ctx, "z-"+name, []byte("m"))
		require.NoError(t, err, name)
		assert.True(t, ed25519.Verify(pub, []byte("m"), sig), name)
		require.NoError(t, ks.Delete(ctx, "z-"+name), name)
		_, err = keyring.Get(agenttrustkeyring.DefaultService, "z-"+name)
		require.ErrorIs(t, err, keyring.ErrNotFound, name)
	}
}

func TestCorruptEntry(t *testing.T) {
	keyring.MockInit()
	pair, _ := newPair(t)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 1024)
	rsaDER, _ := x509.MarshalPKCS8PrivateKey(rsaKey)
	rsaPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: rsaDER}))
	for name, secret := range map[string]string{"garbage": "s3cr3t-not-a-pem", "RSA": rsaPEM, "public": pair.PublicKeyPEM} {
		require.NoError(t, keyring.Set("agenttrust-id", "a", secret))
		_, err := agenttrustkeyring.New().Sign(context.Background(), "a", []byte("m"))
		require.ErrorIs(t, err, agenttrust.ErrKeyStore, "%s entry", name)
		require.ErrorIs(t, err, agenttrust.ErrAgentTrust, "%s entry", name)
		require.NotErrorIs(t, err, agenttrust.ErrKeyNotFound, "%s entry", name)
		require.NotErrorIs(t, err, agenttrustkeyring.ErrKeychain, "%s entry", name)
		leak := secret
		if strings.HasPrefix(secret, "-----") {
			leak = pemBody(secret)[:20]
		}
		require.NotContains(t, fmt.Sprintf("%v %+v %#v %s %q", err, err, err, err, err), leak, "%s: error shows the secret", name)
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
		typed := assert.ErrorIs(t, err, agenttrustkeyring.ErrKeychain, "%s: not a typed keychain failure", name)
		typed = assert.ErrorIs(t, err, agenttrust.ErrKeyStore, "%s: not a typed keychain failure", name) && typed
		typed = assert.ErrorIs(t, err, agenttrust.ErrAgentTrust, "%s: not a typed keychain failure", name) && typed
		typed = assert.ErrorIs(t, err, cause, "%s: not a typed keychain failure", name) && typed
		typed = assert.NotErrorIs(t, err, agenttrust.ErrKeyNotFound, "%s: not a typed keychain failure", name) && typed
		if !typed {
			continue
		}
		var ae *agenttrust.AgentTrustError
		if assert.ErrorAs(t, err, &ae, name) {
			assert.Equal(t, agenttrust.CodeKeyStore, ae.Code, name)
			assert.Zero(t, ae.Status, name)
		}
		msg := err.Error()
		assert.Contains(t, msg, "OS keychain unavailable or failed", name)
		assert.Contains(t, msg, `"a"`, name)
		assert.NotContains(t, msg, pemBody(pair.PrivateKeyPEM)[:20], name)
	}
}

func TestStoreNeverPrintsKeys(t *testing.T) {
	keyring.MockInit()
	s := agenttrustkeyring.New()
	pair, _ := newPair(t)
	require.NoError(t, s.Store(context.Background(), "a", pair.PrivateKeyPEM))
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("store", "ks", s)
	out := fmt.Sprintf("%v %+v %#v %s %q", s, s, s, s, s) + logs.String()
	require.NotContains(t, out, pemBody(pair.PrivateKeyPEM)[:20], "output shows the key")
	require.Contains(t, logs.String(), "agenttrust-id", "log does not name the service")
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
		assert.NoError(t, err)
	}
}
