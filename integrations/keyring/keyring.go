// Package agenttrustkeyring is an agenttrust.KeyStore on the operating
// system's keychain (macOS Keychain, the freedesktop Secret Service on Linux
// and the BSDs, Windows Credential Manager), built on
// github.com/zalando/go-keyring.
//
// Each agent's private key is one keychain entry: service "agenttrust-id"
// (see WithService), account the agent id, secret the PKCS#8 PEM. This is
// the naming of the Python SDK's KeychainKeyStore. On Linux the two SDKs
// share entries both ways. On macOS this store reads entries the Python SDK
// wrote, but go-keyring stores its own secrets base64-encoded with a
// "go-keyring-base64:" prefix, which the Python SDK does not decode. On
// Windows the two libraries name their credentials differently and do not
// share entries.
//
// The keychain calls cannot be interrupted. A context that ends while a call
// is running makes the method return at once with the context's error; the
// call itself finishes in the background, so a Store or Delete that
// returned a context error may still have taken effect. Calls through this
// package are serialised, because keychains are not built for concurrent
// writers.
package agenttrustkeyring

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	agenttrust "github.com/agenttrustid/agenttrust-go"
	"github.com/zalando/go-keyring"
)

// DefaultService is the keychain service name of the Python SDK's
// KeychainKeyStore, used unless WithService says otherwise.
const DefaultService = "agenttrust-id"

// ErrKeychain matches errors from the operating system's keychain itself:
// no keychain on this system (no Secret Service on the D-Bus session bus,
// an unsupported platform), a locked keychain the user did not unlock, or a
// refused or failed call. Such errors also match agenttrust.ErrKeyStore and
// agenttrust.ErrAgentTrust, and unwrap to the go-keyring error.
var ErrKeychain = errors.New("agenttrustkeyring: OS keychain error")

// KeyStore is an agenttrust.KeyStore backed by the OS keychain. It is safe
// for concurrent use and holds no key material itself: each Sign reads the
// key from the keychain, signs and drops it. A zero KeyStore, and a nil
// *KeyStore, work as the store New() returns: service DefaultService.
type KeyStore struct {
	service string
}

// name is the keychain service name: DefaultService unless one was set.
func (s *KeyStore) name() string {
	if s == nil || s.service == "" {
		return DefaultService
	}
	return s.service
}

var _ agenttrust.KeyStore = (*KeyStore)(nil)

// Option configures a KeyStore.
type Option func(*KeyStore)

// WithService sets the keychain service name (default DefaultService). An
// empty name keeps the default.
func WithService(service string) Option {
	return func(s *KeyStore) {
		if service != "" {
			s.service = service
		}
	}
}

// New returns a KeyStore on the OS keychain. It does not touch the keychain;
// the first Store, Sign or Delete does.
func New(opts ...Option) *KeyStore {
	s := &KeyStore{service: DefaultService}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Service is the keychain service name the store uses.
func (s *KeyStore) Service() string { return s.name() }

// String describes the store; it never holds a key.
func (s *KeyStore) String() string {
	return "agenttrustkeyring.KeyStore{service: " + strconv.Quote(s.name()) + "}"
}

// LogValue describes the store for log/slog.
func (s *KeyStore) LogValue() slog.Value {
	return slog.GroupValue(slog.String("service", s.name()))
}

// Store validates privateKeyPEM and writes it to the keychain as agentID's
// entry, replacing any previous one. An empty agentID or a PEM that is not
// an Ed25519 PKCS#8 private key is an *agenttrust.ValidationError returned
// before the keychain is touched; keychain failures match ErrKeychain.
func (s *KeyStore) Store(ctx context.Context, agentID, privateKeyPEM string) error {
	if agentID == "" {
		return agenttrust.NewError(agenttrust.CodeValidation, "keychain key store: missing required agent_id", nil)
	}
	if _, err := agenttrust.ParsePrivateKeyPEM(privateKeyPEM); err != nil {
		return err
	}
	var setErr error
	if err := s.call(ctx, func() { setErr = keyring.Set(s.name(), agentID, privateKeyPEM) }); err != nil {
		return s.ctxErr("store the key of", agentID, err)
	}
	if setErr != nil {
		return s.keychainErr("store the key of", agentID, setErr)
	}
	return nil
}

// Sign reads agentID's key from the keychain and returns the raw 64-byte
// Ed25519 signature of data. An agent without an entry is an error matching
// agenttrust.ErrKeyNotFound; an entry that is not an Ed25519 PKCS#8 PEM is
// an error matching agenttrust.ErrKeyStore; keychain failures match
// ErrKeychain.
func (s *KeyStore) Sign(ctx context.Context, agentID string, data []byte) ([]byte, error) {
	if agentID == "" {
		return nil, agenttrust.NewError(agenttrust.CodeValidation, "keychain key store: missing required agent_id", nil)
	}
	var secret string
	var getErr error
	if err := s.call(ctx, func() { secret, getErr = keyring.Get(s.name(), agentID) }); err != nil {
		return nil, s.ctxErr("read the key of", agentID, err)
	}
	switch {
	case errors.Is(getErr, keyring.ErrNotFound):
		return nil, agenttrust.NewKeyNotFoundError(agentID)
	case getErr != nil:
		return nil, s.keychainErr("read the key of", agentID, getErr)
	}
	priv, err := agenttrust.ParsePrivateKeyPEM(decodeSecret(secret))
	if err != nil {
		// The parse error describes the structure, never the key bytes.
		return nil, agenttrust.NewError(agenttrust.CodeKeyStore,
			fmt.Sprintf("keychain entry %q/%q is not an Ed25519 private key PEM", s.name(), agentID),
			storeCause{err})
	}
	return ed25519.Sign(priv, data), nil
}

// Delete removes agentID's entry from the keychain. An agent without an
// entry is not an error; keychain failures match ErrKeychain.
func (s *KeyStore) Delete(ctx context.Context, agentID string) error {
	if agentID == "" {
		return agenttrust.NewError(agenttrust.CodeValidation, "keychain key store: missing required agent_id", nil)
	}
	var delErr error
	if err := s.call(ctx, func() { delErr = keyring.Delete(s.name(), agentID) }); err != nil {
		return s.ctxErr("delete the key of", agentID, err)
	}
	if delErr != nil && !errors.Is(delErr, keyring.ErrNotFound) {
		return s.keychainErr("delete the key of", agentID, delErr)
	}
	return nil
}

// decodeSecret undoes the hex encoding macOS's security tool applies when
// it prints a multi-line secret that another program (the Python SDK)
// stored; anything else is returned unchanged.
func decodeSecret(secret string) string {
	if strings.HasPrefix(secret, "-----BEGIN") {
		return secret
	}
	if b, err := hex.DecodeString(strings.TrimSpace(secret)); err == nil && strings.HasPrefix(string(b), "-----BEGIN") {
		return string(b)
	}
	return secret
}

// backend serialises keychain calls (the go-keyring backends, and its mock
// in particular, are not safe for concurrent use).
var backend = make(chan struct{}, 1)

// call runs fn on the keychain unless ctx ends first. When ctx ends while
// fn runs, call returns ctx's error and fn finishes in the background.
func (s *KeyStore) call(ctx context.Context, fn func()) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case backend <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() { <-backend }()
		fn()
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		select {
		case <-done: // finished anyway: report its result
			return nil
		default:
			return ctx.Err()
		}
	}
}

func (s *KeyStore) ctxErr(what, agentID string, err error) error {
	return agenttrust.NewError(agenttrust.CodeKeyStore,
		fmt.Sprintf("keychain: %s agent %q: %v", what, agentID, err), storeCause{err})
}

func (s *KeyStore) keychainErr(what, agentID string, err error) error {
	return agenttrust.NewError(agenttrust.CodeKeyStore,
		fmt.Sprintf("OS keychain unavailable or failed: could not %s agent %q (service %q): %v", what, agentID, s.name(), err),
		keychainCause{err})
}

// storeCause makes a wrapped error match agenttrust.ErrKeyStore.
type storeCause struct{ err error }

func (c storeCause) Error() string        { return c.err.Error() }
func (c storeCause) Unwrap() error        { return c.err }
func (c storeCause) Is(target error) bool { return target == agenttrust.ErrKeyStore }

// keychainCause makes a keychain failure match ErrKeychain and
// agenttrust.ErrKeyStore.
type keychainCause struct{ err error }

func (c keychainCause) Error() string { return c.err.Error() }
func (c keychainCause) Unwrap() error { return c.err }
func (c keychainCause) Is(target error) bool {
	return target == ErrKeychain || target == agenttrust.ErrKeyStore
}
