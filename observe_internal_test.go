package agenttrust

import (
	"context"
	"go/ast"
	goparser "go/parser"
	"go/token"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// apiPath matches the string literals that are API paths or templates.
var apiPath = regexp.MustCompile(`^/(api|mcp|a2a|health)(/[A-Za-z0-9_.{}-]*)*$`)

// TestRouteTableCoversEveryPath reads the package's source: every API path
// literal must have a route, so that no call is reported as "request", and
// every route must be used.
func TestRouteTableCoversEveryPath(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") || name == "observe.go" {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := goparser.ParseFile(fset, name, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			s, err := strconv.Unquote(lit.Value)
			if err != nil || !apiPath.MatchString(s) {
				return true
			}
			used[s] = true
			return true
		})
	}
	if len(used) < 30 {
		t.Fatalf("found only %d API paths in the source; the scan is broken", len(used))
	}
	known := map[string]bool{}
	for _, rt := range routes {
		known[rt.tmpl] = true
	}
	for p := range used {
		if !known[p] {
			t.Errorf("path %s is used in a request but has no route in observe.go", p)
		}
	}
	for p := range known {
		if !used[p] {
			t.Errorf("route %s is not used by any request", p)
		}
	}
}

func TestLookupRoute(t *testing.T) {
	cases := []struct{ method, path, op string }{
		{"POST", "/api/v1/agenttrust/check", "actions.check"},
		{"GET", "/api/v1/agents/a1", "agents.get"},
		{"GET", "/api/v1/agents/a%2F..%2Fb", "agents.get"},
		{"POST", "/api/v1/agents/a1/revoke", "agents.revoke"},
		{"POST", "/api/v1/agents/a1/card", "agent_cards.generate"},
		{"GET", "/api/v1/agents/a1/card", "agent_cards.get"},
		{"PUT", "/api/v1/agents/a1/card/publish", "agent_cards.publish"},
		{"POST", "/mcp/servers", "mcp.register_server"},
		{"POST", "/mcp/srv-1", "mcp.call_tool"},
		{"POST", "/mcp/sessions/init", "sessions.init_session"},
		{"GET", "/mcp/sessions/s1", "sessions.get_session"},
		{"POST", "/a2a", "a2a.task"},
		{"POST", "/a2a/agents/a1", "a2a.send_message"},
		{"GET", "/a2a/agents/a1/agent.json", "agent_cards.get_public"},
		{"GET", "/api/v1/siem/destinations/d1/logs", "streaming.delivery_log"},
		{"DELETE", "/api/v1/siem/destinations/d1", "streaming.delete"},
		// Unknown: another method, an empty id, extra or missing segments.
		{"DELETE", "/api/v1/agenttrust/check", ""},
		{"GET", "/api/v1/agents/", ""},
		{"GET", "/api/v1/agents/a1/extra", ""},
		{"POST", "/api/v1/agents/a1/revoke/x", ""},
		{"GET", "/nope", ""},
	}
	for _, tc := range cases {
		rt := lookupRoute(tc.method, tc.path)
		got := ""
		if rt != nil {
			got = rt.op
		}
		if got != tc.op {
			t.Errorf("lookupRoute(%s %s) = %q, want %q", tc.method, tc.path, got, tc.op)
		}
	}
}

func TestDescribeUnknownRoute(t *testing.T) {
	c := newTestClient(t, "https://gw.example:8443/prefix", WithObserver(&Observer{RequestDone: func(_ context.Context, _ RequestInfo, _ RequestResult) {}}))
	info := c.obs.describe(&request{method: "GET", path: "/api/v1/unknown/secret-id"})
	want := RequestInfo{Operation: "request", Method: "GET", Scheme: "https", ServerAddress: "gw.example", ServerPort: 8443}
	if info != want {
		t.Errorf("describe = %+v, want %+v", info, want)
	}
	info = c.obs.describe(&request{method: "GET", base: baseGateway, path: "/api/v1/agents/secret-id"})
	if info.URLTemplate != "/prefix/api/v1/agents/{agent_id}" {
		t.Errorf("URL template %q", info.URLTemplate)
	}
	// The derived auth URL of an https gateway without a port.
	c = newTestClient(t, "https://gw.example", WithObserver(&Observer{RequestDone: func(_ context.Context, _ RequestInfo, _ RequestResult) {}}))
	if got := c.obs.describe(&request{method: "POST", base: baseAuth, path: "/api/v1/agenttrust/check"}); got.ServerPort != 443 {
		t.Errorf("https default port %d", got.ServerPort)
	}
}

// TestObserverWithoutRequestHooks: hooks for other events leave requests on
// the unobserved path.
func TestObserverWithoutRequestHooks(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(`{}`)) }))
	defer srv.Close()
	for _, tc := range []struct {
		obs      *Observer
		observed bool
	}{
		{&Observer{CacheLookup: func(context.Context, CacheKind, bool) {}}, false},
		{&Observer{CheckDone: func(context.Context, CheckInfo, CheckResult) {}}, false},
		{&Observer{AttemptDone: func(context.Context, RequestInfo, AttemptResult) {}}, true},
	} {
		c := newTestClient(t, srv.URL, WithObserver(tc.obs))
		r := &request{method: http.MethodGet, path: "/health", idempotent: true}
		if _, err := c.do(ctxT(t), r); err != nil {
			t.Fatal(err)
		}
		if got := r.observer != nil; got != tc.observed {
			t.Errorf("%+v: request observed %v, want %v", tc.obs, got, tc.observed)
		}
	}
}
