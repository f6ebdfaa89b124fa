package agenttrust

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Response decoding (WIRE.md §3). Models decode with encoding/json, which
// already treats a JSON null as "leave the field alone" (D16) and reports a
// wrong JSON type as an error (a DECODE_ERROR); lenientTime makes timestamps
// forgiving (D15).

var jsonNull = []byte("null")

// isEmptyJSON reports whether b is an empty body or a JSON null.
func isEmptyJSON(b []byte) bool {
	b = bytes.TrimSpace(b)
	return len(b) == 0 || bytes.Equal(b, jsonNull)
}

// decodeErr builds a DECODE_ERROR for a 2xx response.
func decodeErr(resp *response, cause error) error {
	return wrapKind(&AgentTrustError{
		Status:    resp.status,
		Code:      CodeDecode,
		Message:   "Decode error: " + cause.Error(),
		RequestID: resp.requestID,
		Body:      resp.body,
		Details:   map[string]any{},
		Err:       cause,
	})
}

// call sends r and decodes the reply into a new T: flat, or, when wrapper is
// set, from under that key if it holds an object (WIRE.md §3.2). Every
// service returning one model goes through it.
func call[T any](ctx context.Context, c *Client, r *request, wrapper string) (*T, error) {
	resp, err := c.do(ctx, r)
	if err != nil {
		return nil, err
	}
	return decodeModel[T](resp, wrapper)
}

// decodeModel decodes resp into a new T, flat or from under wrapper.
func decodeModel[T any](resp *response, wrapper string) (*T, error) {
	v := new(T)
	var err error
	if wrapper == "" {
		err = decodeObject(resp, v)
	} else {
		err = decodeWrapped(resp, wrapper, v)
	}
	if err != nil {
		return nil, err
	}
	return v, nil
}

// decodeObject decodes a flat model; an empty or null body gives the model's
// defaults.
func decodeObject(resp *response, out any) error {
	b := resp.body
	if isEmptyJSON(b) {
		b = []byte("{}")
	}
	if err := json.Unmarshal(b, out); err != nil {
		return decodeErr(resp, err)
	}
	return nil
}

// decodeWrapped decodes a model that may come wrapped as {"<key>": {...}}
// (WIRE.md §3.2): the inner object is used when the key holds an object.
func decodeWrapped(resp *response, key string, out any) error {
	inner, err := unwrap(resp.body, key)
	if err != nil {
		return decodeErr(resp, err)
	}
	if err := json.Unmarshal(inner, out); err != nil {
		return decodeErr(resp, err)
	}
	return nil
}

// unwrap returns the object under key when b is an object whose key holds an
// object, else b itself ({} for an empty or null body).
func unwrap(b []byte, key string) ([]byte, error) {
	if isEmptyJSON(b) {
		return []byte("{}"), nil
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		return nil, err
	}
	if v, ok := top[key]; ok {
		if v = bytes.TrimSpace(v); len(v) > 0 && v[0] == '{' {
			return v, nil
		}
	}
	return b, nil
}

// decodeList decodes a list reply: a bare array, or an object whose wrapper
// key holds an array or null (WIRE.md §3.3). An object without the key is a
// DECODE_ERROR (D14). elemKey, when set, unwraps each element as well.
func decodeList[T any](resp *response, key, elemKey string) ([]T, error) {
	b := bytes.TrimSpace(resp.body)
	if isEmptyJSON(b) {
		return []T{}, nil
	}
	var raw []json.RawMessage
	switch b[0] {
	case '[':
		if err := json.Unmarshal(b, &raw); err != nil {
			return nil, decodeErr(resp, err)
		}
	case '{':
		var top map[string]json.RawMessage
		if err := json.Unmarshal(b, &top); err != nil {
			return nil, decodeErr(resp, err)
		}
		v, ok := top[key]
		if !ok {
			return nil, decodeErr(resp, fmt.Errorf("list reply has no %q key", key))
		}
		if err := json.Unmarshal(v, &raw); err != nil {
			return nil, decodeErr(resp, fmt.Errorf("%q: %w", key, err))
		}
	default:
		return nil, decodeErr(resp, errors.New("list reply is neither an array nor an object"))
	}
	out := make([]T, len(raw))
	for i, el := range raw {
		if el = bytes.TrimSpace(el); len(el) == 0 || el[0] != '{' {
			return nil, decodeErr(resp, fmt.Errorf("list element %d is not an object", i))
		}
		if elemKey != "" {
			var err error
			if el, err = unwrap(el, elemKey); err != nil {
				return nil, decodeErr(resp, err)
			}
		}
		if err := json.Unmarshal(el, &out[i]); err != nil {
			return nil, decodeErr(resp, fmt.Errorf("list element %d: %w", i, err))
		}
	}
	return out, nil
}

// decodeRawObject decodes a raw-object result (health, approvals, telemetry,
// SIEM test): a JSON object, or {} for an empty or null body.
func decodeRawObject(resp *response) (map[string]any, error) {
	m := map[string]any{}
	if isEmptyJSON(resp.body) {
		return m, nil
	}
	if err := json.Unmarshal(resp.body, &m); err != nil {
		return nil, decodeErr(resp, err)
	}
	if m == nil {
		m = map[string]any{}
	}
	return m, nil
}

// lenientTime is a timestamp that never fails decoding: absent, null, "",
// non-string or malformed values give the zero time (WIRE.md §3.5, D15).
type lenientTime struct{ time.Time }

func (t *lenientTime) UnmarshalJSON(b []byte) error {
	t.Time = time.Time{}
	if len(b) < 2 || b[0] != '"' {
		return nil
	}
	var s string
	if json.Unmarshal(b, &s) != nil {
		return nil
	}
	t.Time = parseTimestamp(s)
	return nil
}

// parseTimestamp accepts YYYY-MM-DDThh:mm:ss with an optional fraction of
// 1-9 digits (more are truncated) and an optional Z, z or ±hh:mm offset; a
// 't' or a space may separate date and time. Zone-less values are UTC.
// Anything else gives the zero time.
func parseTimestamp(s string) time.Time {
	if len(s) < 19 {
		return time.Time{}
	}
	b := []byte(s)
	switch b[10] {
	case 'T', 't', ' ':
		b[10] = 'T'
	default:
		return time.Time{}
	}
	main, rest := b[:19], b[19:]
	var frac []byte
	if len(rest) > 0 && rest[0] == '.' {
		n := 1
		for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
			n++
		}
		if n == 1 {
			return time.Time{}
		}
		frac = rest[1:n]
		if len(frac) > 9 {
			frac = frac[:9]
		}
		rest = rest[n:]
	}
	zone := "Z"
	switch {
	case len(rest) == 0:
	case len(rest) == 1 && (rest[0] == 'Z' || rest[0] == 'z'):
	case len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':':
		zone = string(rest)
	default:
		return time.Time{}
	}
	v := string(main)
	if len(frac) > 0 {
		v += "." + string(frac)
	}
	t, err := time.Parse(time.RFC3339Nano, v+zone)
	if err != nil {
		return time.Time{}
	}
	return t
}
