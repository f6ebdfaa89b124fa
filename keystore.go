package agenttrust

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
)

// KeyStore holds agents' private keys and signs with them, so that a private
// key need not travel through application code. Implementations must be
// safe for concurrent use. Each method takes a context because a store may do
// I/O (an OS keychain, a KMS).
//
// Errors should be SDK errors: Sign for an agent the store does not hold
// returns an error matching ErrKeyNotFound (see NewKeyNotFoundError), and
// Store with a PEM that is not an Ed25519 PKCS#8 private key returns a
// *ValidationError (ParsePrivateKeyPEM gives one). Delete of an unknown agent
// is a no-op. Errors must never contain a private key.
type KeyStore interface {
	// Store saves the private key PEM of agentID, replacing any previous one.
	Store(ctx context.Context, agentID, privateKeyPEM string) error
	// Sign returns the raw 64-byte Ed25519 signature of data by agentID's key.
	Sign(ctx context.Context, agentID string, data []byte) ([]byte, error)
	// Delete removes agentID's key; an unknown agent is not an error.
	Delete(ctx context.Context, agentID string) error
}

// Key store error codes.
const (
	// CodeKeyNotFound: a key store holds no key for the agent.
	CodeKeyNotFound = "KEY_NOT_FOUND"
	// CodeKeyStore: a key store failed for another reason (its backend is
	// unreachable, it refused to sign).
	CodeKeyStore = "KEY_STORE_ERROR"
)

var (
	// ErrKeyNotFound matches errors from a KeyStore that holds no key for the
	// agent. Such errors match ErrAgentTrust too.
	ErrKeyNotFound = errors.New("agenttrust: key not found")
	// ErrKeyStore matches every failure of a KeyStore seen by the SDK (in
	// the proof-of-possession flow and in agent credentials), whatever the
	// store returned; ErrKeyNotFound and *ValidationError still match when
	// the store returned those.
	ErrKeyStore = errors.New("agenttrust: key store error")
)

// NewKeyNotFoundError returns the error a KeyStore returns from Sign for an
// agent it holds no key for: an *AgentTrustError with code KEY_NOT_FOUND
// matching ErrKeyNotFound and ErrAgentTrust.
func NewKeyNotFoundError(agentID string) error {
	return &AgentTrustError{
		Code:    CodeKeyNotFound,
		Message: "no private key for agent " + strconv.Quote(agentID) + " in the key store",
		Err:     ErrKeyNotFound,
	}
}

// keyStoreErr wraps a failure of a key store, keeping it matchable
// (errors.Is with ErrKeyNotFound, errors.As with *ValidationError) and adding
// ErrKeyStore. It is never a network error, so a fail-open guard never
// allows a tool on it.
func keyStoreErr(message string, cause error) error {
	code := CodeKeyStore
	var ae *AgentTrustError
	if errors.As(cause, &ae) && (ae.Code == CodeKeyNotFound || ae.Code == CodeValidation) {
		code = ae.Code
	}
	return wrapKind(&AgentTrustError{
		Code:    code,
		Message: message + ": " + cause.Error(),
		Err:     keyStoreCause{cause},
	})
}

// keyStoreCause makes a wrapped store error match ErrKeyStore too.
type keyStoreCause struct{ err error }

func (k keyStoreCause) Error() string        { return k.err.Error() }
func (k keyStoreCause) Unwrap() error        { return k.err }
func (k keyStoreCause) Is(target error) bool { return target == ErrKeyStore }

// InMemoryKeyStore is a KeyStore that keeps keys in process memory, for
// tests and short-lived agents. The zero value is ready to use and it is
// safe for concurrent use. Printing or logging it never shows a key. A nil
// *InMemoryKeyStore holds no key and can store none: Store and Sign return
// a *ValidationError, and the SDK's functions that take a KeyStore refuse
// it as they refuse a nil one.
type InMemoryKeyStore struct {
	mu   sync.RWMutex
	keys map[string]*heldKey
}

// missingKeyStore reports whether ks holds no store: nil, or a nil
// *InMemoryKeyStore (which could neither keep nor sign with a key).
func missingKeyStore(ks KeyStore) bool {
	mem, ok := ks.(*InMemoryKeyStore)
	return ks == nil || ok && mem == nil
}

func errNilKeyStore() error {
	return validationErr("key store: a nil *InMemoryKeyStore; make one with NewInMemoryKeyStore")
}

// heldKey wraps a private key so that even printing the store's fields
// (a dereferenced copy, a debugger-style dump) shows no key bytes.
type heldKey struct{ priv ed25519.PrivateKey }

func (*heldKey) String() string                  { return "[redacted]" }
func (k *heldKey) GoString() string              { return k.String() }
func (k *heldKey) Format(f fmt.State, verb rune) { formatRedacted(f, verb, k, k) }

// NewInMemoryKeyStore returns an empty InMemoryKeyStore.
func NewInMemoryKeyStore() *InMemoryKeyStore { return &InMemoryKeyStore{} }

// Store validates privateKeyPEM (an Ed25519 PKCS#8 PEM, else a
// *ValidationError) and keeps it for agentID. An empty agentID is a
// *ValidationError.
func (s *InMemoryKeyStore) Store(_ context.Context, agentID, privateKeyPEM string) error {
	if s == nil {
		return errNilKeyStore()
	}
	if agentID == "" {
		return validationErr("key store: missing required agent_id")
	}
	priv, err := ParsePrivateKeyPEM(privateKeyPEM)
	if err != nil {
		return err
	}
	s.mu.Lock()
	if s.keys == nil {
		s.keys = make(map[string]*heldKey)
	}
	s.keys[agentID] = &heldKey{priv}
	s.mu.Unlock()
	return nil
}

// Sign signs data with agentID's key. An unknown agent is an error matching
// ErrKeyNotFound.
func (s *InMemoryKeyStore) Sign(_ context.Context, agentID string, data []byte) ([]byte, error) {
	priv, err := s.key(agentID)
	if err != nil {
		return nil, err
	}
	return ed25519.Sign(priv, data), nil
}

// key returns agentID's private key. Store replaces a key rather than
// writing over it, so the key returned stays intact.
func (s *InMemoryKeyStore) key(agentID string) (ed25519.PrivateKey, error) {
	if s == nil {
		return nil, errNilKeyStore()
	}
	s.mu.RLock()
	k, ok := s.keys[agentID]
	s.mu.RUnlock()
	if !ok {
		return nil, NewKeyNotFoundError(agentID)
	}
	return k.priv, nil
}

// Delete forgets agentID's key; an unknown agent, or a nil store, is a
// no-op.
func (s *InMemoryKeyStore) Delete(_ context.Context, agentID string) error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	delete(s.keys, agentID)
	s.mu.Unlock()
	return nil
}

// Len reports how many keys the store holds.
func (s *InMemoryKeyStore) Len() int {
	if s == nil {
		return 0
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.keys)
}

// String describes the store without its keys.
func (s *InMemoryKeyStore) String() string {
	return "agenttrust.InMemoryKeyStore{keys: " + strconv.Itoa(s.Len()) + "}"
}

// GoString is String, so that %#v hides the keys too.
func (s *InMemoryKeyStore) GoString() string { return s.String() }

// Format prints String for every verb.
func (s *InMemoryKeyStore) Format(f fmt.State, verb rune) { formatRedacted(f, verb, s, s) }

// LogValue hides the keys from log/slog.
func (s *InMemoryKeyStore) LogValue() slog.Value {
	return slog.GroupValue(slog.Int("keys", s.Len()))
}
