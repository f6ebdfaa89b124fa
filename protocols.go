package agenttrust

import (
	"fmt"
	"log/slog"
	"reflect"
	"strings"
)

// initProtocols wires the protocol sub-clients (agent cards, A2A, MCP,
// delegations, federation, SIEM streaming).
func (c *Client) initProtocols() {
	c.AgentCards = (*AgentCardsService)(&c.common)
	c.A2A = (*A2AService)(&c.common)
	c.MCP = (*MCPService)(&c.common)
	c.Delegations = (*DelegationsService)(&c.common)
	c.Federation = (*FederationService)(&c.common)
	c.Streaming = (*StreamingService)(&c.common)
}

// Ptr returns a pointer to v. It fills the optional ("sent when not nil")
// fields of the params structs, where a pointer to a zero value such as
// Ptr(false) or Ptr(0) is sent while nil is omitted:
//
//	c.Streaming.Update(ctx, id, agenttrust.StreamingUpdateParams{IsActive: agenttrust.Ptr(false)})
func Ptr[T any](v T) *T { return &v }

// isNil reports whether v is nil or holds a nil map, slice, pointer,
// interface, channel or function (so json.RawMessage(nil) counts as nil).
func isNil(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Map, reflect.Slice, reflect.Pointer, reflect.Interface, reflect.Chan, reflect.Func:
		return rv.IsNil()
	}
	return false
}

// redactedSecret describes a secret without revealing it.
func redactedSecret(s string) string {
	if s == "" {
		return `""`
	}
	return "[redacted]"
}

// formatRedacted implements fmt.Formatter for types whose String and
// GoString hide secrets: every verb prints one of them, so no verb (not even
// %d or %x) can walk the fields and reveal a secret.
func formatRedacted(f fmt.State, verb rune, s fmt.Stringer, gs fmt.GoStringer) {
	if verb == 'v' && f.Flag('#') {
		_, _ = f.Write([]byte(gs.GoString()))
		return
	}
	_, _ = f.Write([]byte(s.String()))
}

// optStr renders an optional string field for String methods.
func optStr(p *string) string {
	if p == nil {
		return "nil"
	}
	return fmt.Sprintf("%q", *p)
}

// optInt renders an optional int field for String methods.
func optInt(p *int) string {
	if p == nil {
		return "nil"
	}
	return fmt.Sprint(*p)
}

// secretAttr is a slog attribute for a secret: set or not, never the value.
func secretAttr(key string, set bool) slog.Attr {
	if set {
		return slog.String(key, "[redacted]")
	}
	return slog.String(key, "")
}

// joinFields renders name: value pairs for String methods.
func joinFields(typ string, kv ...string) string {
	var b strings.Builder
	b.WriteString("agenttrust.")
	b.WriteString(typ)
	b.WriteByte('{')
	for i := 0; i+1 < len(kv); i += 2 {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(kv[i])
		b.WriteString(": ")
		b.WriteString(kv[i+1])
	}
	b.WriteByte('}')
	return b.String()
}
