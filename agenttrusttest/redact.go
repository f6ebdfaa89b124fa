package agenttrusttest

import (
	"fmt"
	"log/slog"
	"strconv"
	"time"
)

// The identity records hold the tokens, proofs and signatures the fake saw.
// Tests read them through the fields; printing or logging a record shows
// everything else and hides those, like the SDK's own types do.

const redacted = "[redacted]"

// hidden says whether a secret was there without showing it.
func hidden(s string) string {
	if s == "" {
		return `""`
	}
	return redacted
}

// formatString prints s for every fmt verb, so that no verb (%x, %d, %#v,
// ...) can reach the fields behind it.
func formatString(f fmt.State, s string) { _, _ = f.Write([]byte(s)) }

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// String describes the record without its token.
func (r WIMSETokenRecord) String() string {
	return "agenttrusttest.WIMSETokenRecord{Token: " + hidden(r.Token) + ", AgentID: " + strconv.Quote(r.AgentID) +
		", JKT: " + strconv.Quote(r.JKT) + ", Audience: " + fmt.Sprintf("%q", r.Audience) +
		", WithProof: " + strconv.FormatBool(r.WithProof) + ", IssuedAt: " + stamp(r.IssuedAt) +
		", ExpiresAt: " + stamp(r.ExpiresAt) + ", Revoked: " + strconv.FormatBool(r.Revoked) + "}"
}

// GoString is String.
func (r WIMSETokenRecord) GoString() string { return r.String() }

// Format prints String for every verb.
func (r WIMSETokenRecord) Format(f fmt.State, _ rune) { formatString(f, r.String()) }

// LogValue hides the token from log/slog.
func (r WIMSETokenRecord) LogValue() slog.Value {
	return slog.GroupValue(slog.String("token", hidden(r.Token)), slog.String("agent_id", r.AgentID),
		slog.Bool("with_proof", r.WithProof), slog.Bool("revoked", r.Revoked))
}

// String describes the record without its signature.
func (r PoPRecord) String() string {
	return "agenttrusttest.PoPRecord{AgentID: " + strconv.Quote(r.AgentID) + ", Nonce: " + strconv.Quote(r.Nonce) +
		", TS: " + strconv.FormatInt(r.TS, 10) + ", Signature: " + hidden(r.Signature) +
		", Message: " + strconv.Quote(r.Message) + ", Accepted: " + strconv.FormatBool(r.Accepted) +
		", Reason: " + strconv.Quote(string(r.Reason)) + "}"
}

// GoString is String.
func (r PoPRecord) GoString() string { return r.String() }

// Format prints String for every verb.
func (r PoPRecord) Format(f fmt.State, _ rune) { formatString(f, r.String()) }

// LogValue hides the signature from log/slog.
func (r PoPRecord) LogValue() slog.Value {
	return slog.GroupValue(slog.String("agent_id", r.AgentID), slog.String("signature", hidden(r.Signature)),
		slog.Bool("accepted", r.Accepted), slog.String("reason", string(r.Reason)))
}

// String describes the record without the proof.
func (r DPoPRecord) String() string {
	return "agenttrusttest.DPoPRecord{Method: " + strconv.Quote(r.Method) + ", URL: " + strconv.Quote(r.URL) +
		", Proof: " + hidden(r.Proof) + ", HTM: " + strconv.Quote(r.HTM) + ", HTU: " + strconv.Quote(r.HTU) +
		", IAT: " + strconv.FormatInt(r.IAT, 10) + ", JTI: " + strconv.Quote(r.JTI) + ", JKT: " + strconv.Quote(r.JKT) +
		", AgentID: " + strconv.Quote(r.AgentID) + ", Accepted: " + strconv.FormatBool(r.Accepted) +
		", Reason: " + strconv.Quote(string(r.Reason)) + "}"
}

// GoString is String.
func (r DPoPRecord) GoString() string { return r.String() }

// Format prints String for every verb.
func (r DPoPRecord) Format(f fmt.State, _ rune) { formatString(f, r.String()) }

// LogValue hides the proof from log/slog.
func (r DPoPRecord) LogValue() slog.Value {
	return slog.GroupValue(slog.String("htu", r.HTU), slog.String("jti", r.JTI), slog.String("proof", hidden(r.Proof)),
		slog.String("agent_id", r.AgentID), slog.Bool("accepted", r.Accepted), slog.String("reason", string(r.Reason)))
}
