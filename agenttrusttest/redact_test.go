package agenttrusttest

import (
	"bytes"
	"fmt"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestIdentityRecordsHideSecrets: printing or logging an identity record
// never shows its token, signature or proof, while the fields keep them.
func TestIdentityRecordsHideSecrets(t *testing.T) {
	const tok, sig, proof = "eyJ-secret-token", "secret-signature-86", "eyJ-secret-proof"
	cases := []struct {
		name   string
		rec    any
		secret string
		shown  string // a non-secret field that must still show
	}{
		{"WIMSETokenRecord", WIMSETokenRecord{Token: tok, AgentID: "agent-7"}, tok, "agent-7"},
		{"PoPRecord", PoPRecord{Signature: sig, AgentID: "agent-7", Nonce: "n-1"}, sig, "agent-7"},
		{"DPoPRecord", DPoPRecord{Proof: proof, AgentID: "agent-7", JTI: "jti-1"}, proof, "agent-7"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
				out := fmt.Sprintf(verb, tc.rec)
				assert.NotContains(t, out, tc.secret, "%s shows the secret", verb)
				out = fmt.Sprintf(verb, []any{tc.rec})
				assert.NotContains(t, out, tc.secret, "%s of a slice shows the secret", verb)
			}
			assert.Contains(t, fmt.Sprint(tc.rec), tc.shown)
			assert.Contains(t, fmt.Sprint(tc.rec), redacted)
			var buf bytes.Buffer
			slog.New(slog.NewJSONHandler(&buf, nil)).Info("record", "rec", tc.rec)
			slog.New(slog.NewTextHandler(&buf, nil)).Info("record", "rec", tc.rec)
			require.NotEmpty(t, buf.String())
			assert.NotContains(t, buf.String(), tc.secret)
			assert.Contains(t, buf.String(), tc.shown)
		})
	}
	// The fields still hold the values, for tests.
	assert.Equal(t, tok, WIMSETokenRecord{Token: tok}.Token)
}
