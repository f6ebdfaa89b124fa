package agenttrust

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"sync"
	"time"
)

// Response decoding. Models decode with encoding/json, which
// already treats a JSON null as "leave the field alone" and reports a
// wrong JSON type as an error (a DECODE_ERROR); lenientTime makes timestamps
// forgiving.

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
// set, from under that key if it holds an object. Every
// service returning one model goes through it.
func call[T any](ctx context.Context, c *Client, r *request, wrapper string, opts []RequestOption) (*T, error) {
	resp, err := c.do(ctx, r, opts)
	if err != nil {
		return nil, err
	}
	return decodeModel[T](resp, wrapper)
}

// callRaw sends r and returns the reply as a generic JSON object.
func callRaw(ctx context.Context, c *Client, r *request, opts []RequestOption) (map[string]any, error) {
	resp, err := c.do(ctx, r, opts)
	if err != nil {
		return nil, err
	}
	return decodeRawObject(resp)
}

// callChecked is call for a flat model that must hold a field: a reply
// where has is false is a DECODE_ERROR saying what is missing.
func callChecked[T any](ctx context.Context, c *Client, r *request, has func(*T) bool, missing string, opts []RequestOption) (*T, error) {
	resp, err := c.do(ctx, r, opts)
	if err != nil {
		return nil, err
	}
	v, err := decodeModel[T](resp, "")
	if err != nil {
		return nil, err
	}
	if !has(v) {
		return nil, decodeErr(resp, errors.New(missing))
	}
	return v, nil
}

// list sends r as an idempotent GET and decodes the list under key (see
// decodeList). Every service returning a list goes through it.
func list[T any](ctx context.Context, c *Client, r *request, key, elemKey string, opts []RequestOption) ([]T, error) {
	r.method, r.idempotent = http.MethodGet, true
	resp, err := c.do(ctx, r, opts)
	if err != nil {
		return nil, err
	}
	return decodeList[T](resp, key, elemKey)
}

// callAt sends a bodiless request to tmpl, its one placeholder filled with
// id, and decodes the reply as call does. A GET is sent as idempotent.
func callAt[T any](ctx context.Context, c *Client, method, tmpl, id, wrapper string, opts []RequestOption) (*T, error) {
	path, err := buildPath(tmpl, id)
	if err != nil {
		return nil, err
	}
	return call[T](ctx, c, &request{method: method, path: path, idempotent: method == http.MethodGet}, wrapper, opts)
}

// deleteAt sends DELETE tmpl, its one placeholder filled with id. Any 2xx
// reply is success; its body is not read.
func deleteAt(ctx context.Context, c *Client, tmpl, id string, opts []RequestOption) error {
	path, err := buildPath(tmpl, id)
	if err != nil {
		return err
	}
	_, err = c.do(ctx, &request{method: http.MethodDelete, path: path, idempotent: true}, opts)
	return err
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

// decodeWrapped decodes a model that may come wrapped as {"<key>": {...}}:
// the inner object is used when the key holds an object.
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

// MaxListItems bounds the elements of a list reply (Agents.List,
// MCP.ListServers, Delegations.List, Federation.ListProviders,
// Streaming.List and Streaming.DeliveryLog). A reply with more is a
// *DecodeError. The body itself is capped at 10 MiB, but a body of tiny
// elements ("[{},{},...]") would otherwise decode into millions of values
// and over a gigabyte of memory; with the bound, the longest list holds
// about 20 MB of elements. Real elements take more than 100 bytes of JSON,
// so a reply that fits under the body cap does not come near the bound.
const MaxListItems = 100_000

// decodeList decodes a list reply: a bare array, or an object whose wrapper
// key holds an array or null. An object without the key is a DECODE_ERROR.
// elemKey, when set, unwraps each element as well. The reply is streamed,
// one element at a time, so that nothing but the result grows with the
// element count, and that count is bounded by MaxListItems.
func decodeList[T any](resp *response, key, elemKey string) ([]T, error) {
	b := bytes.TrimSpace(resp.body)
	if isEmptyJSON(b) {
		return []T{}, nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	var out []T
	var err error
	switch b[0] {
	case '[':
		if _, err = dec.Token(); err == nil {
			out, err = decodeArray[T](dec, elemKey)
		}
	case '{':
		out, err = decodeWrapperKey[T](dec, key, elemKey)
	default:
		err = errors.New("list reply is neither an array nor an object")
	}
	if err == nil {
		// Nothing may follow the reply's one JSON value.
		if _, terr := dec.Token(); terr != io.EOF {
			err = errors.New("list reply: data after the top-level value")
		}
	}
	if err != nil {
		return nil, decodeErr(resp, err)
	}
	return out, nil
}

// decodeWrapperKey reads an object token by token and decodes the array
// under key; other members are skipped without being kept. As with a map,
// the last of duplicate keys wins.
func decodeWrapperKey[T any](dec *json.Decoder, key, elemKey string) ([]T, error) {
	if _, err := dec.Token(); err != nil { // the '{'
		return nil, err
	}
	var out []T
	found := false
	var skip json.RawMessage // reused: a skipped member costs no lasting memory
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, err
		}
		if name, _ := t.(string); name != key {
			if err := dec.Decode(&skip); err != nil {
				return nil, err
			}
			continue
		}
		found = true
		switch t, err := dec.Token(); {
		case err != nil:
			return nil, fmt.Errorf("%q: %w", key, err)
		case t == nil: // null
			out = nil
		case t == json.Delim('['):
			if out, err = decodeArray[T](dec, elemKey); err != nil {
				return nil, fmt.Errorf("%q: %w", key, err)
			}
		default:
			return nil, fmt.Errorf("%q: the wrapper value is neither an array nor null", key)
		}
	}
	if _, err := dec.Token(); err != nil { // the '}'
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("list reply has no %q key", key)
	}
	if out == nil {
		out = []T{}
	}
	return out, nil
}

// decodeArray decodes the rest of a JSON array whose '[' was read and whose
// elements must be objects, one element at a time, refusing more than
// MaxListItems of them.
func decodeArray[T any](dec *json.Decoder, elemKey string) ([]T, error) {
	out := []T{}
	var el json.RawMessage // reused for every element
	for i := 0; dec.More(); i++ {
		if i == MaxListItems {
			return nil, fmt.Errorf("list reply has more than %d elements (MaxListItems)", MaxListItems)
		}
		if err := dec.Decode(&el); err != nil {
			return nil, err
		}
		if len(el) == 0 || el[0] != '{' {
			return nil, fmt.Errorf("list element %d is not an object", i)
		}
		raw := []byte(el)
		if elemKey != "" {
			var err error
			if raw, err = unwrap(raw, elemKey); err != nil {
				return nil, err
			}
		}
		out = append(out, *new(T))
		if err := unmarshalValid(raw, &out[len(out)-1]); err != nil {
			return nil, fmt.Errorf("list element %d: %w", i, err)
		}
	}
	if _, err := dec.Token(); err != nil { // the ']'
		return nil, err
	}
	return out, nil
}

// unmarshalValid decodes b, which the caller knows to be one valid JSON
// value, into v. A model with its own UnmarshalJSON gets b directly: going
// through json.Unmarshal would validate b once more and allocate a decoder
// state per element, for nothing.
func unmarshalValid(b []byte, v any) error {
	if u, ok := v.(json.Unmarshaler); ok {
		return u.UnmarshalJSON(b)
	}
	return json.Unmarshal(b, v)
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
// non-string or malformed values give the zero time. It is the one lenient
// time of the SDK: unmarshalModel puts it in place of every time.Time field
// of a model, and a model whose UnmarshalJSON needs a shadow struct anyway
// (for alternate keys) uses it for its timestamps.
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

// unmarshalModel decodes the JSON object b into *v as json.Unmarshal would,
// except that every time.Time field of T is read with lenientTime's rules,
// so a malformed timestamp never fails a reply. Fields that b does not set
// keep the value they have in *v: a model sets its defaults, then calls
// unmarshalModel from its UnmarshalJSON. Unexported fields are left alone.
//
// T must be a struct without embedded fields; T's UnmarshalJSON is not
// called (the decoding goes through a shadow struct type without methods).
func unmarshalModel[T any](b []byte, v *T) error {
	p := lenientPlanOf(reflect.TypeOf(v).Elem())
	sv := reflect.New(p.shadow)
	s, d := sv.Elem(), reflect.ValueOf(v).Elem()
	for i, f := range p.fields {
		if f.time {
			s.Field(i).Field(0).Set(d.Field(f.index))
		} else {
			s.Field(i).Set(d.Field(f.index))
		}
	}
	err := json.Unmarshal(b, sv.Interface())
	// Copied back even on error, as json.Unmarshal leaves what it decoded.
	for i, f := range p.fields {
		if f.time {
			d.Field(f.index).Set(s.Field(i).Field(0))
		} else {
			d.Field(f.index).Set(s.Field(i))
		}
	}
	return err
}

// lenientPlan is how unmarshalModel decodes one model type: through shadow,
// a struct type with the model's exported fields and tags in which every
// time.Time field is a lenientTime.
type lenientPlan struct {
	shadow reflect.Type
	fields []lenientField // one per shadow field
}

type lenientField struct {
	index int  // the field's index in the model
	time  bool // a time.Time in the model, a lenientTime in the shadow
}

var (
	lenientPlans    sync.Map // reflect.Type -> *lenientPlan
	timeType        = reflect.TypeOf(time.Time{})
	lenientTimeType = reflect.TypeOf(lenientTime{})
)

// lenientPlanOf returns the plan of the struct type t, built on first use.
func lenientPlanOf(t reflect.Type) *lenientPlan {
	if p, ok := lenientPlans.Load(t); ok {
		return p.(*lenientPlan)
	}
	p := &lenientPlan{}
	var fields []reflect.StructField
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Anonymous {
			// json promotes the fields of embedded structs; the shadow would
			// have to as well. No model embeds anything.
			panic("agenttrust: unmarshalModel: " + t.String() + " embeds " + f.Type.String())
		}
		if !f.IsExported() {
			continue // invisible to encoding/json too
		}
		sf := reflect.StructField{Name: f.Name, Type: f.Type, Tag: f.Tag}
		isTime := f.Type == timeType
		if isTime {
			sf.Type = lenientTimeType
		}
		fields = append(fields, sf)
		p.fields = append(p.fields, lenientField{index: i, time: isTime})
	}
	p.shadow = reflect.StructOf(fields)
	actual, _ := lenientPlans.LoadOrStore(t, p)
	return actual.(*lenientPlan)
}
