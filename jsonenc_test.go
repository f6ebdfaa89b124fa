package agenttrust

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
		require.NoError(t, enc.Encode(s))
		got := appendJSONString(nil, s)
		assert.Equal(t, string(bytes.TrimSuffix(want.Bytes(), []byte("\n"))), string(got), "%q: got %s, want %s", s, got, want.Bytes())
	})
}
