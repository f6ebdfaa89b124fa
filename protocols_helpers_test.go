package agenttrust_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	agenttrust "github.com/agenttrustid/agenttrust-go"
)

// Helpers of the protocol tests. Names carry a "proto" prefix so they cannot
// clash with the helpers of other test files in the package.

const (
	protoPrefix = "/prefix" // every test client talks to a base URL with a path prefix
	protoAPIKey = "sk_test_protocols_key"
)

// protoRequest is what the test server received.
type protoRequest struct {
	Method     string
	RequestURI string // as sent, escapes intact, prefix stripped
	Header     http.Header
	Body       []byte
}

// bodyMap decodes the body into a map keyed by wire names.
func (r protoRequest) bodyMap(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	d := json.NewDecoder(bytes.NewReader(r.Body))
	if err := d.Decode(&m); err != nil {
		t.Fatalf("request body %q is not a JSON object: %v", r.Body, err)
	}
	if m == nil {
		t.Fatalf("request body is null")
	}
	return m
}

// protoReply is one scripted answer.
type protoReply struct {
	status int
	body   string
	header map[string]string
}

// protoServer records every request and answers with the scripted replies in
// order (the last one repeats), or with reply() when set.
type protoServer struct {
	*httptest.Server
	mu      sync.Mutex
	reqs    []protoRequest
	replies []protoReply
	n       int
}

func newProtoServer(t *testing.T, replies ...protoReply) *protoServer {
	t.Helper()
	s := &protoServer{replies: replies}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *protoServer) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.reqs = append(s.reqs, protoRequest{
		Method:     r.Method,
		RequestURI: strings.TrimPrefix(r.RequestURI, protoPrefix),
		Header:     r.Header.Clone(),
		Body:       body,
	})
	rep := protoReply{status: 200, body: "{}"}
	if len(s.replies) > 0 {
		rep = s.replies[min(s.n, len(s.replies)-1)]
	}
	s.n++
	s.mu.Unlock()
	if !strings.HasPrefix(r.RequestURI, protoPrefix+"/") {
		http.Error(w, "request outside the base URL prefix: "+r.RequestURI, http.StatusTeapot)
		return
	}
	for k, v := range rep.header {
		w.Header().Set(k, v)
	}
	if rep.status == 0 {
		rep.status = 200
	}
	w.WriteHeader(rep.status)
	_, _ = io.WriteString(w, rep.body)
}

func (s *protoServer) requests() []protoRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]protoRequest(nil), s.reqs...)
}

// only returns the single request the server received.
func (s *protoServer) only(t *testing.T) protoRequest {
	t.Helper()
	reqs := s.requests()
	if len(reqs) != 1 {
		t.Fatalf("server got %d requests, want 1: %+v", len(reqs), reqs)
	}
	return reqs[0]
}

func (s *protoServer) reset(replies ...protoReply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reqs, s.replies, s.n = nil, replies, 0
}

// client returns a client for s with no retries unless opts say otherwise.
func (s *protoServer) client(t *testing.T, opts ...agenttrust.Option) *agenttrust.Client {
	t.Helper()
	base := []agenttrust.Option{
		agenttrust.WithBaseURL(s.URL + protoPrefix),
		agenttrust.WithAPIKey(protoAPIKey),
		agenttrust.WithRetryPolicy(agenttrust.RetryPolicy{}),
	}
	c, err := agenttrust.New(append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// checkHeaders checks the headers every request carries, and Content-Type
// and Content-Length by method.
func checkHeaders(t *testing.T, r protoRequest) {
	t.Helper()
	if got := r.Header.Get("X-Api-Key"); got != protoAPIKey {
		t.Errorf("X-API-Key = %q", got)
	}
	if got := r.Header.Get("Accept"); got != "application/json" {
		t.Errorf("Accept = %q", got)
	}
	if got := r.Header.Get("User-Agent"); !strings.HasPrefix(got, "agenttrust-go/") {
		t.Errorf("User-Agent = %q", got)
	}
	ct := r.Header.Get("Content-Type")
	switch r.Method {
	case http.MethodPost, http.MethodPut:
		if ct != "application/json" {
			t.Errorf("%s without Content-Type application/json (%q)", r.Method, ct)
		}
	default:
		if ct != "" {
			t.Errorf("%s with Content-Type %q", r.Method, ct)
		}
		if len(r.Body) != 0 {
			t.Errorf("%s with a body: %q", r.Method, r.Body)
		}
	}
}

// checkBodiless checks a bodiless POST or PUT: no body bytes,
// Content-Length 0, Content-Type still sent.
func checkBodiless(t *testing.T, r protoRequest, method string) {
	t.Helper()
	if r.Method != method {
		t.Errorf("method %s, want %s", r.Method, method)
	}
	if len(r.Body) != 0 {
		t.Errorf("bodiless %s sent %q", method, r.Body)
	}
	if cl := r.Header.Get("Content-Length"); cl != "0" {
		t.Errorf("Content-Length = %q, want 0", cl)
	}
	checkHeaders(t, r)
}

// checkRequest checks method and path (escapes intact, prefix stripped).
func checkRequest(t *testing.T, r protoRequest, method, uri string) {
	t.Helper()
	if r.Method != method || r.RequestURI != uri {
		t.Errorf("request %s %s, want %s %s", r.Method, r.RequestURI, method, uri)
	}
	checkHeaders(t, r)
}

// checkBody compares the JSON body with want by wire names: every key of
// want with an equal value and no other key.
func checkBody(t *testing.T, r protoRequest, want map[string]any) {
	t.Helper()
	got := r.bodyMap(t)
	wantJSON, _ := json.Marshal(want)
	var norm map[string]any
	_ = json.Unmarshal(wantJSON, &norm) // numbers as float64, like got
	gj, _ := json.Marshal(got)
	nj, _ := json.Marshal(norm)
	if !bytes.Equal(gj, nj) {
		t.Errorf("body\n got %s\nwant %s", gj, nj)
	}
}

// checkKeyOrder checks that the top-level keys of a JSON object appear in
// this order.
func checkKeyOrder(t *testing.T, body []byte, keys ...string) {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(body))
	if tok, err := d.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("body %q is not an object", body)
	}
	var got []string
	for d.More() {
		tok, err := d.Token()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, tok.(string))
		var skip json.RawMessage
		if err := d.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	if strings.Join(got, ",") != strings.Join(keys, ",") {
		t.Errorf("key order %v, want %v", got, keys)
	}
}

// wantCode checks that err is an *AgentTrustError with the code.
func wantCode(t *testing.T, err error, code string) *agenttrust.AgentTrustError {
	t.Helper()
	var e *agenttrust.AgentTrustError
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an *AgentTrustError", err, err)
	}
	if e.Code != code {
		t.Fatalf("code %q (%v), want %q", e.Code, err, code)
	}
	if !errors.Is(err, agenttrust.ErrAgentTrust) {
		t.Errorf("error does not match ErrAgentTrust")
	}
	return e
}
