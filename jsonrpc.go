package agenttrust

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"strconv"
)

// JSON-RPC 2.0, as the A2A and MCP endpoints speak it. Requests always
// carry id 1; the reply id is never checked.

// rpcRequest is the request envelope, keys in the wire order. Params is
// omitted only when it is a nil interface; callers turn typed nils into nil.
type rpcRequest struct {
	JSONRPC string `json:"jsonrpc"`
	ID      int    `json:"id"`
	Method  string `json:"method"`
	Params  any    `json:"params,omitempty"`
}

func newRPCRequest(method string, params any) *rpcRequest {
	return &rpcRequest{JSONRPC: "2.0", ID: 1, Method: method, Params: params}
}

// rpcResult is the one reply handler of A2A and MCP. For a 2xx reply it
// returns, in this order:
//
//  1. a *JSONRPCError when the reply is an object with a non-null "error";
//  2. the raw value of "result" when that key is present (it may be null);
//  3. the whole reply otherwise ({} for an empty or null body).
//
// A body that is not JSON is a DECODE_ERROR.
func rpcResult(resp *response) (json.RawMessage, error) {
	b := bytes.TrimSpace(resp.body)
	if isEmptyJSON(b) {
		return json.RawMessage("{}"), nil
	}
	if !json.Valid(b) {
		return nil, decodeErr(resp, errors.New("JSON-RPC reply is not valid JSON"))
	}
	if b[0] != '{' {
		return json.RawMessage(b), nil
	}
	var env map[string]json.RawMessage
	if err := json.Unmarshal(b, &env); err != nil {
		return nil, decodeErr(resp, err)
	}
	if e, ok := env["error"]; ok && !isEmptyJSON(e) {
		return nil, rpcError(resp, e)
	}
	if r, ok := env["result"]; ok {
		return r, nil
	}
	return json.RawMessage(b), nil
}

// rpcError builds the *JSONRPCError for a non-null "error" member: an object
// {code, message, data}, or a plain string taken as the message with code 0.
// Values of unexpected types never fail: a non-integer code reads as 0, a
// non-string message as none.
func rpcError(resp *response, raw json.RawMessage) error {
	e := &JSONRPCError{AgentTrustError: &AgentTrustError{
		Status:    resp.status,
		Code:      CodeJSONRPC,
		RequestID: resp.requestID,
		Body:      resp.body,
		Details:   map[string]any{},
	}}
	raw = bytes.TrimSpace(raw)
	switch raw[0] {
	case '"':
		_ = json.Unmarshal(raw, &e.RPCMessage)
	case '{':
		var obj struct {
			Code    json.RawMessage `json:"code"`
			Message json.RawMessage `json:"message"`
			Data    json.RawMessage `json:"data"`
		}
		_ = json.Unmarshal(raw, &obj)
		e.RPCCode = rpcCode(obj.Code)
		if len(obj.Message) > 0 && obj.Message[0] == '"' {
			_ = json.Unmarshal(obj.Message, &e.RPCMessage)
		}
		if !isEmptyJSON(obj.Data) { // absent or null: nil
			e.RPCData = append([]byte(nil), obj.Data...)
		}
		var details map[string]any
		if json.Unmarshal(raw, &details) == nil && details != nil {
			e.Details = details
		}
	}
	e.RPCMessage = redactString(e.RPCMessage, resp.key, resp.secrets)
	e.Message = e.RPCMessage
	if e.Message == "" {
		e.Message = "JSON-RPC error " + strconv.Itoa(e.RPCCode)
	}
	return redact(e, resp.key, resp.secrets)
}

// rpcCode reads error.code: a JSON number with an integral value that fits
// an int32 (JSON-RPC codes do); anything else is 0.
func rpcCode(raw json.RawMessage) int {
	if len(raw) == 0 || (raw[0] != '-' && (raw[0] < '0' || raw[0] > '9')) {
		return 0 // absent, or not a JSON number
	}
	var n json.Number
	if json.Unmarshal(raw, &n) != nil {
		return 0
	}
	if i, err := n.Int64(); err == nil && i >= math.MinInt32 && i <= math.MaxInt32 {
		return int(i)
	}
	f, err := n.Float64()
	if err != nil || f != math.Trunc(f) || f < math.MinInt32 || f > math.MaxInt32 {
		return 0
	}
	return int(f)
}

// DecodeResult decodes a raw JSON-RPC result, such as the one MCP.CallTool
// returns, into a value of type T. A JSON null gives T's zero value; a
// result that does not fit T is a *DecodeError (code DECODE_ERROR).
func DecodeResult[T any](raw json.RawMessage) (T, error) {
	var v T
	if isEmptyJSON(raw) {
		return v, nil
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		var zero T
		return zero, NewError(CodeDecode, "Decode error: "+err.Error(), err)
	}
	return v, nil
}

// rpcCall sends a JSON-RPC request and decodes the reply's result (see
// rpcResult) into a new T; a decode error keeps the reply's status and
// request id.
func rpcCall[T any](ctx context.Context, c *Client, r *request, opts []RequestOption) (*T, error) {
	resp, err := c.do(ctx, r, opts)
	if err != nil {
		return nil, err
	}
	if resp.body, err = rpcResult(resp); err != nil {
		return nil, err
	}
	return decodeModel[T](resp, "")
}
