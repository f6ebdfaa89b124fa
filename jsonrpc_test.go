package agenttrust

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzJSONRPCReply checks that no reply makes the JSON-RPC decoder panic,
// and that every failure is one of the SDK's typed errors. `go test` runs the
// seed corpus in testdata/fuzz/FuzzJSONRPCReply.
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
