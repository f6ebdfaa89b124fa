package agenttrust

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var ctxType = reflect.TypeOf((*context.Context)(nil)).Elem()

// fillArg returns a plausible value of type t: strings are "x", string
// pointers and slices hold "x", structs have every such field filled. Other
// validation (an empty id, an empty update) would otherwise answer before the
// ctx is looked at, and the test could not tell which check fired.
func fillArg(t reflect.Type) reflect.Value {
	v := reflect.New(t).Elem()
	switch t.Kind() {
	case reflect.String:
		v.SetString("x")
	case reflect.Pointer:
		v.Set(reflect.New(t.Elem()))
		v.Elem().Set(fillArg(t.Elem()))
	case reflect.Slice:
		if t.Elem().Kind() == reflect.String {
			v.Set(reflect.ValueOf([]string{"x"}).Convert(t))
		}
	case reflect.Struct:
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			switch f.Type.Kind() {
			case reflect.String, reflect.Slice:
				v.Field(i).Set(fillArg(f.Type))
			case reflect.Pointer:
				if f.Type.Elem().Kind() == reflect.String {
					v.Field(i).Set(fillArg(f.Type))
				}
			}
		}
	}
	return v
}

// ctxMethods returns every exported method taking a context.Context first,
// of the Client and of each service it exposes, so that a method added
// later is covered without editing the test.
func ctxMethods(c *Client) map[string]reflect.Value {
	out := map[string]reflect.Value{}
	add := func(prefix string, v reflect.Value) {
		for i := 0; i < v.NumMethod(); i++ {
			m := v.Method(i)
			if m.Type().NumIn() > 0 && m.Type().In(0) == ctxType {
				out[prefix+v.Type().Method(i).Name] = m
			}
		}
	}
	cv := reflect.ValueOf(c)
	add("Client.", cv)
	for i := 0; i < cv.Elem().NumField(); i++ {
		f := cv.Elem().Type().Field(i)
		if f.IsExported() && f.Type.Kind() == reflect.Pointer {
			add(f.Name+".", cv.Elem().Field(i))
		}
	}
	return out
}

// Every exported call that takes a ctx rejects a nil one with a validation
// error, before any I/O and without a panic; a nil ctx given to Tokens.Issue
// once panicked under the token cache's lock and wedged the client.
func TestNilContextEveryCall(t *testing.T) {
	srv := newRecServer(t, reply(200, `{}`))
	c := newTestClient(t, srv.URL)
	methods := ctxMethods(c)
	require.GreaterOrEqual(t, len(methods), 45, "found only %d methods taking a ctx", len(methods))
	for _, name := range []string{"Tokens.Issue", "MCP.CallTool", "Agents.List", "Client.Health"} {
		_, ok := methods[name]
		require.True(t, ok, "%s not found among %d methods", name, len(methods))
	}
	for name, m := range methods {
		mt := m.Type()
		args := []reflect.Value{reflect.Zero(ctxType)}
		for i := 1; i < mt.NumIn(); i++ {
			args = append(args, fillArg(mt.In(i)))
		}
		var out []reflect.Value
		func() {
			defer func() {
				p := recover()
				assert.Nil(t, p, "%s(nil ctx) panicked: %v", name, p)
			}()
			if mt.IsVariadic() { // no options: the last argument is an empty slice
				args[len(args)-1] = reflect.Zero(mt.In(mt.NumIn() - 1))
				out = m.CallSlice(args)
				return
			}
			out = m.Call(args)
		}()
		if out != nil {
			checkNilCtxResult(t, name, out)
		}
	}
	n := srv.count()
	assert.Equal(t, 0, n, "%d requests sent with a nil ctx", n)

	// The token cache is still usable: nothing is left locked.
	done := make(chan error, 1)
	go func() {
		c.SetAPIKey(testKey)
		srv.setHandler(reply(200, fmt.Sprintf(`{"token":"at_x","expires_at":%q}`, time.Now().Add(time.Hour).UTC().Format(time.RFC3339))))
		_, err := c.Tokens.Issue(ctxT(t), TokenIssueParams{AgentID: "a1"})
		done <- err
	}()
	select {
	case err := <-done:
		assert.NoError(t, err, "Issue after a nil ctx")
	case <-time.After(5 * time.Second):
		require.FailNow(t, "Issue or SetAPIKey blocked after a nil ctx")
	}
}

// checkNilCtxResult wants a validation error with no status. Its message is
// "nil context" unless an argument check of the method came first, which is
// as good: no I/O either way.
func checkNilCtxResult(t *testing.T, name string, out []reflect.Value) {
	t.Helper()
	err, _ := out[len(out)-1].Interface().(error)
	var ve *ValidationError
	if assert.ErrorAs(t, err, &ve, "%s(nil ctx) = %v, want a validation error", name, err) &&
		assert.Equal(t, 0, ve.Status, "%s(nil ctx) = %v, want a validation error", name, err) &&
		!strings.Contains(ve.Message, "nil context") {
		t.Logf("%s(nil ctx): %v (an argument check came first)", name, err)
	}
}
