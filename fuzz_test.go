package agenttrust

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Fuzz tests for the protocol decoders. `go test` runs the seed corpora in
// testdata/fuzz/<FuzzName>/; `go test -fuzz FuzzName` explores further. No
// input may panic, and every failure must be one of the SDK's typed errors.

func FuzzDecodeAgentCard(f *testing.F) {
	f.Add([]byte(`{"name": "n", "capabilities": {"extensions": [{"uri": "https://agenttrust.id/ext/trust/v1", "params": {"ati_trust_score": "0.5"}}]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		card := new(AgentCard)
		if err := decodeObject(&response{status: 200, body: data}, card); err != nil {
			var de *DecodeError
			require.ErrorAs(t, err, &de, "error %v (%T) is not a *DecodeError", err, err)
			return
		}
		require.NotNil(t, card.Capabilities, "nil capabilities")
		_ = card.PrimaryURL()
		_ = card.TrustScore()
		if p, ok := card.AgentPublicKeyPEM(); ok {
			block, _ := pem.Decode([]byte(p))
			require.NotNil(t, block, "bad PEM %q", p)
			_, err := x509.ParsePKIXPublicKey(block.Bytes)
			require.NoError(t, err, "PEM key does not parse")
		} else {
			require.Empty(t, p, "no key but %q", p)
		}
	})
}

func FuzzJSONRPCReply(f *testing.F) {
	f.Add([]byte(`{"jsonrpc": "2.0", "id": 1, "error": {"code": -32602, "message": "bad"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		resp := &response{status: 200, body: data}
		raw, err := rpcResult(resp)
		if err != nil {
			var rpc *JSONRPCError
			var de *DecodeError
			switch {
			case errors.As(err, &rpc):
				require.Equal(t, CodeJSONRPC, rpc.Code, "bad JSON-RPC error %+v", rpc.AgentTrustError)
				require.NotEmpty(t, rpc.Message, "bad JSON-RPC error %+v", rpc.AgentTrustError)
				require.ErrorIs(t, err, ErrJSONRPC, "bad JSON-RPC error %+v", rpc.AgentTrustError)
				if rpc.RPCData != nil {
					require.True(t, json.Valid(rpc.RPCData), "RPCData %q is not JSON", rpc.RPCData)
				}
			case errors.As(err, &de):
			default:
				require.Failf(t, "untyped error", "%v (%T)", err, err)
			}
			return
		}
		require.True(t, json.Valid(raw), "result %q is not JSON", raw)
		sub := &response{status: 200, body: raw}
		_ = decodeObject(sub, new(A2ATask))
		mt := new(A2AMessageTask)
		if decodeObject(sub, mt) == nil {
			require.NotNil(t, mt.Status, "nil status map")
		}
		_, _ = DecodeResult[map[string]any](raw)
	})
}

func FuzzDecodeModels(f *testing.F) {
	f.Add([]byte(`{"id": "x", "created_at": "2026-03-01T10:00:00Z"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		resp := &response{status: 200, body: data}
		check := func(err error) {
			if err == nil {
				return
			}
			var de *DecodeError
			require.ErrorAs(t, err, &de, "error %v (%T) is not a *DecodeError", err, err)
			require.ErrorIs(t, err, ErrDecode, "error %v (%T) is not a *DecodeError", err, err)
		}
		check(decodeObject(resp, new(MCPServer)))
		check(decodeObject(resp, new(SIEMDestination)))
		check(decodeObject(resp, new(SIEMDeliveryRecord)))
		check(decodeObject(resp, new(FederationIntrospectionResult)))
		check(decodeObject(resp, new(IDTokenResponse)))
		check(decodeObject(resp, new(Session)))
		check(decodeWrapped(resp, "delegation", new(Delegation)))
		check(decodeWrapped(resp, "provider", new(FederationProvider)))
		_, err := decodeList[MCPServer](resp, "servers", "")
		check(err)
		_, err = decodeList[Delegation](resp, "delegations", "")
		check(err)
		_, err = decodeList[FederationProvider](resp, "providers", "provider")
		check(err)
		_, err = decodeList[SIEMDestination](resp, "destinations", "")
		check(err)
		_, err = decodeList[SIEMDeliveryRecord](resp, "logs", "")
		check(err)
		var d SIEMDestination
		if decodeObject(resp, &d) == nil {
			_ = d.String()
		}
	})
}

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

// FuzzParseKeyPEM checks that no input makes the key parsers panic, and
// that whatever they accept is a usable Ed25519 key.
func FuzzParseKeyPEM(f *testing.F) {
	f.Add(vecPrivPEM)
	f.Add(vecPubPEM)
	f.Add("-----BEGIN PRIVATE KEY-----\n\n-----END PRIVATE KEY-----\n")
	f.Fuzz(func(t *testing.T, s string) {
		if priv, err := ParsePrivateKeyPEM(s); err == nil {
			assert.Len(t, priv, 64, "accepted a %d-byte private key", len(priv))
		}
		if pub, err := ParsePublicKeyPEM(s); err == nil {
			assert.Len(t, pub, 32, "accepted a %d-byte public key", len(pub))
		}
	})
}
