package agenttrust

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"strconv"
)

// PEM block types of agent keys.
const (
	pemTypePublic  = "PUBLIC KEY"
	pemTypePrivate = "PRIVATE KEY"
)

// AgentKeyPair is an Ed25519 agent key pair in PEM form: the public key as a
// PKIX "PUBLIC KEY" block and the private key as an unencrypted PKCS#8
// "PRIVATE KEY" block, both with LF line endings and a final newline.
//
// The private key is the agent's identity: printing an AgentKeyPair with any
// fmt verb, or logging it with log/slog, shows the public key only.
type AgentKeyPair struct {
	PublicKeyPEM  string
	PrivateKeyPEM string
}

// String shows the public key and hides the private key.
func (k AgentKeyPair) String() string {
	return "agenttrust.AgentKeyPair{public: " + strconv.Quote(k.PublicKeyPEM) +
		", private: " + redactedSecret(k.PrivateKeyPEM) + "}"
}

// GoString is String, so that %#v hides the private key too.
func (k AgentKeyPair) GoString() string { return k.String() }

// Format prints String for every verb, so that no verb (%x, %d, ...) can
// dump the private key.
func (k AgentKeyPair) Format(f fmt.State, verb rune) { formatRedacted(f, verb, k, k) }

// LogValue hides the private key from log/slog.
func (k AgentKeyPair) LogValue() slog.Value {
	return slog.GroupValue(slog.String("public_key", k.PublicKeyPEM),
		secretAttr("private_key", k.PrivateKeyPEM != ""))
}

// GenerateAgentKey returns a fresh Ed25519 key pair from crypto/rand.
func GenerateAgentKey() (AgentKeyPair, error) {
	return generateAgentKey(rand.Reader)
}

func generateAgentKey(r io.Reader) (AgentKeyPair, error) {
	_, priv, err := ed25519.GenerateKey(r)
	if err != nil {
		return AgentKeyPair{}, NewError(CodeValidation, "generating an Ed25519 key: "+err.Error(), err)
	}
	return keyPairPEM(priv), nil
}

// keyPairPEM encodes priv and its public key. Marshalling an Ed25519 key
// cannot fail.
func keyPairPEM(priv ed25519.PrivateKey) AgentKeyPair {
	pubDER, err := x509.MarshalPKIXPublicKey(priv.Public())
	if err != nil {
		panic("agenttrust: marshalling an Ed25519 public key: " + err.Error())
	}
	privDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		panic("agenttrust: marshalling an Ed25519 private key: " + err.Error())
	}
	return AgentKeyPair{
		PublicKeyPEM:  string(pem.EncodeToMemory(&pem.Block{Type: pemTypePublic, Bytes: pubDER})),
		PrivateKeyPEM: string(pem.EncodeToMemory(&pem.Block{Type: pemTypePrivate, Bytes: privDER})),
	}
}

// ParsePrivateKeyPEM parses an unencrypted PKCS#8 "PRIVATE KEY" PEM holding
// an Ed25519 key. Anything else (not PEM, another block type, an RSA or
// ECDSA key, trailing data) is a *ValidationError. The error never contains
// the PEM.
func ParsePrivateKeyPEM(privateKeyPEM string) (ed25519.PrivateKey, error) {
	return parseKeyPEM[ed25519.PrivateKey](privateKeyPEM, pemTypePrivate, "private key", "PKCS#8", x509.ParsePKCS8PrivateKey)
}

// ParsePublicKeyPEM parses a PKIX "PUBLIC KEY" PEM holding an Ed25519 key.
// Anything else is a *ValidationError.
func ParsePublicKeyPEM(publicKeyPEM string) (ed25519.PublicKey, error) {
	return parseKeyPEM[ed25519.PublicKey](publicKeyPEM, pemTypePublic, "public key", "PKIX", x509.ParsePKIXPublicKey)
}

// parseKeyPEM parses s, one PEM block of type typ, with parse and requires
// the key to be a K (an Ed25519 key). Every failure is a *ValidationError
// whose message starts with what and names format on a parse failure.
func parseKeyPEM[K any](s, typ, what, format string, parse func(der []byte) (any, error)) (K, error) {
	var zero K
	der, err := pemBody(s, typ, what)
	if err != nil {
		return zero, err
	}
	key, err := parse(der)
	if err != nil {
		// The parser's message describes the structure, never the key bytes.
		return zero, validationErr(what + ": not a " + format + " key: " + err.Error())
	}
	k, ok := key.(K)
	if !ok {
		return zero, validationErr(fmt.Sprintf("%s: %s, not Ed25519", what, keyKind(key)))
	}
	return k, nil
}

// SignWithPrivateKeyPEM signs data with an Ed25519 private key PEM and
// returns the raw 64-byte signature (RFC 8032).
func SignWithPrivateKeyPEM(privateKeyPEM string, data []byte) ([]byte, error) {
	priv, err := ParsePrivateKeyPEM(privateKeyPEM)
	if err != nil {
		return nil, err
	}
	return ed25519.Sign(priv, data), nil
}

// PublicKeyPEM returns the PKIX "PUBLIC KEY" PEM of an Ed25519 public key,
// e.g. to check a stored private key against a registered agent.
func PublicKeyPEM(pub ed25519.PublicKey) (string, error) {
	if len(pub) != ed25519.PublicKeySize {
		return "", validationErr("public key: " + strconv.Itoa(len(pub)) + " bytes, not an Ed25519 key")
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", validationErr("public key: " + err.Error())
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: pemTypePublic, Bytes: der})), nil
}

// pemBody decodes the single PEM block of s, which must have type typ and
// nothing but white space around it.
func pemBody(s, typ, what string) ([]byte, error) {
	if s == "" {
		return nil, validationErr(what + ": empty PEM")
	}
	block, rest := pem.Decode([]byte(s))
	switch {
	case block == nil:
		return nil, validationErr(what + ": not a PEM block")
	case block.Type != typ:
		return nil, validationErr(what + ": PEM type " + strconv.Quote(block.Type) + ", want " + strconv.Quote(typ))
	case len(block.Headers) != 0:
		return nil, validationErr(what + ": PEM headers are not allowed (an encrypted key?)")
	case len(bytes.TrimSpace(rest)) != 0:
		return nil, validationErr(what + ": data after the PEM block")
	}
	return block.Bytes, nil
}

// keyKind names a parsed key's Go type for error messages, e.g.
// "a *rsa.PrivateKey key".
func keyKind(key any) string { return fmt.Sprintf("a %T key", key) }
