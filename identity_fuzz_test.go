package agenttrust

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzDPoPJSONString checks that the DPoP payload's string encoding is
// byte for byte what encoding/json writes without HTML escaping.
func FuzzDPoPJSONString(f *testing.F) {
	for _, s := range []string{"", "http://h/p", "a&b<c>", "\"\\", "\x00\x1f\x7f", "é\u2028\u2029", "\xff\xfe", "\U0001F600"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(s); err != nil {
			t.Fatal(err)
		}
		if got := appendJSONString(nil, s); string(got) != string(bytes.TrimSuffix(want.Bytes(), []byte("\n"))) {
			t.Errorf("%q: got %s, want %s", s, got, want.Bytes())
		}
	})
}

// FuzzParseKeyPEM checks that no input makes the key parsers panic, and
// that whatever they accept is a usable Ed25519 key.
func FuzzParseKeyPEM(f *testing.F) {
	f.Add(vecPrivPEM)
	f.Add(vecPubPEM)
	f.Add("-----BEGIN PRIVATE KEY-----\n\n-----END PRIVATE KEY-----\n")
	f.Fuzz(func(t *testing.T, s string) {
		if priv, err := ParsePrivateKeyPEM(s); err == nil && len(priv) != 64 {
			t.Errorf("accepted a %d-byte private key", len(priv))
		}
		if pub, err := ParsePublicKeyPEM(s); err == nil && len(pub) != 32 {
			t.Errorf("accepted a %d-byte public key", len(pub))
		}
	})
}
