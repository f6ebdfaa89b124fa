package agenttrusttest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strings"
)

// Strict request-body validation.
//
// Every request body is described by a Go struct whose json tags carry the
// exact wire keys and whose wire tags carry the wire omission rules:
//
//	wire:"always"    the key must be present (only "always" keys may be required)
//	wire:"nullable"  JSON null is accepted (introspect's target)
//	wire:"truthy"    the key is optional, but when present it must not be empty,
//	                 since a client following the spec omits it instead
//	wire:"nonempty"  a present string must not be ""
//
// Keys without "always" are optional ("not None" keys) and are type-checked
// when present. Keys the struct does not declare are rejected. Validation runs
// on the generic JSON value first, so every error names the offending key;
// only then is the body unmarshalled into the struct.

var rawMessageType = reflect.TypeOf(json.RawMessage(nil))

type fieldRule struct {
	key      string
	typ      reflect.Type
	required bool
	nullable bool
	truthy   bool
	nonempty bool
}

func rulesOf(t reflect.Type) []fieldRule {
	rules := make([]fieldRule, 0, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		r := fieldRule{key: name, typ: f.Type}
		for _, opt := range strings.Split(f.Tag.Get("wire"), ",") {
			switch opt {
			case "always":
				r.required = true
			case "nullable":
				r.nullable = true
			case "truthy":
				r.truthy = true
			case "nonempty":
				r.nonempty = true
			}
		}
		rules = append(rules, r)
	}
	return rules
}

// decodeStrict validates data against the struct dst points to and then
// unmarshals it. An empty body is reported as missing.
func decodeStrict(data []byte, dst any) error {
	return decodeStrictAt("", data, dst)
}

// decodeStrictAt is decodeStrict for a nested value; prefix is the key path
// used in error messages (e.g. "params").
func decodeStrictAt(prefix string, data []byte, dst any) error {
	if len(bytes.TrimSpace(data)) == 0 {
		if prefix == "" {
			return errors.New("request body required")
		}
		return fmt.Errorf("missing required key %q", prefix)
	}
	v, err := parseJSON(data)
	if err != nil {
		return fmt.Errorf("invalid JSON body: %v", err)
	}
	if v == nil && prefix != "" {
		return fmt.Errorf("key %q must be an object", prefix)
	}
	if err := checkValue(prefix, v, reflect.TypeOf(dst).Elem()); err != nil {
		return err
	}
	if err := json.Unmarshal(data, dst); err != nil {
		// Unreachable after checkValue, kept as a safety net.
		return fmt.Errorf("invalid body: %v", err)
	}
	return nil
}

// parseJSON decodes exactly one JSON value, keeping numbers as json.Number.
func parseJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("unexpected data after the JSON value")
	}
	return v, nil
}

func joinKey(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func typeErr(path, what string) error {
	return fmt.Errorf("key %q must be %s", path, what)
}

// kindName describes the JSON type a Go type stands for.
func kindName(t reflect.Type) string {
	if t == rawMessageType {
		return "a JSON value"
	}
	switch t.Kind() {
	case reflect.Pointer:
		return kindName(t.Elem())
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int64:
		return "an integer"
	case reflect.Float64:
		return "a number"
	case reflect.Slice:
		if t.Elem().Kind() == reflect.String {
			return "an array of strings"
		}
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	default:
		return "a JSON value"
	}
}

func checkValue(path string, v any, t reflect.Type) error {
	if t == rawMessageType {
		return nil
	}
	switch t.Kind() {
	case reflect.Pointer:
		return checkValue(path, v, t.Elem())
	case reflect.Interface:
		return nil
	case reflect.String:
		if _, ok := v.(string); !ok {
			return typeErr(path, "a string")
		}
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			return typeErr(path, "a boolean")
		}
	case reflect.Int, reflect.Int64:
		n, ok := v.(json.Number)
		if !ok {
			return typeErr(path, "an integer")
		}
		if _, err := n.Int64(); err != nil {
			return typeErr(path, "an integer")
		}
	case reflect.Float64:
		if _, ok := v.(json.Number); !ok {
			return typeErr(path, "a number")
		}
	case reflect.Slice:
		arr, ok := v.([]any)
		if !ok {
			return typeErr(path, kindName(t))
		}
		for i, e := range arr {
			p := fmt.Sprintf("%s[%d]", path, i)
			if e == nil {
				return typeErr(p, kindName(t.Elem()))
			}
			if err := checkValue(p, e, t.Elem()); err != nil {
				return err
			}
		}
	case reflect.Map:
		if _, ok := v.(map[string]any); !ok {
			return typeErr(path, "an object")
		}
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			if path == "" {
				return errors.New("request body must be a JSON object")
			}
			return typeErr(path, "an object")
		}
		return checkObject(path, m, t)
	}
	return nil
}

func checkObject(path string, m map[string]any, t reflect.Type) error {
	rules := rulesOf(t)
	known := make(map[string]bool, len(rules))
	for _, r := range rules {
		known[r.key] = true
	}
	var unknown []string
	for k := range m {
		if !known[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return fmt.Errorf("unknown key %q", joinKey(path, unknown[0]))
	}
	for _, r := range rules {
		p := joinKey(path, r.key)
		v, ok := m[r.key]
		if !ok {
			if r.required {
				return fmt.Errorf("missing required key %q", p)
			}
			continue
		}
		if v == nil {
			if r.nullable {
				continue
			}
			return typeErr(p, kindName(r.typ))
		}
		if err := checkValue(p, v, r.typ); err != nil {
			return err
		}
		if (r.truthy || r.nonempty) && isEmptyJSON(v) {
			if r.truthy {
				return fmt.Errorf("key %q must be omitted when empty", p)
			}
			return fmt.Errorf("key %q must not be empty", p)
		}
	}
	return nil
}

// isEmptyJSON reports whether a decoded JSON value is the zero value a
// "truthy" rule would omit: "", 0, false, [] or {}.
func isEmptyJSON(v any) bool {
	switch x := v.(type) {
	case string:
		return x == ""
	case bool:
		return !x
	case json.Number:
		f, err := x.Float64()
		return err == nil && f == 0
	case []any:
		return len(x) == 0
	case map[string]any:
		return len(x) == 0
	}
	return false
}
