package agenttrust

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

var ts0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

func TestAgentDecoding(t *testing.T) {
	srv := newRecServer(t, nil)
	c := newTestClient(t, srv.URL)
	full := `{"id":"a1","name":"bot","org_id":"o1","framework":"langchain","public_key":"PEM","status":"suspended",
		"capabilities":["r"],"metadata":{"k":1},"created_at":"2026-03-01T10:00:00Z","private_key":"PRIV","extra":true}`
	want := Agent{ID: "a1", Name: "bot", OrgID: "o1", Framework: "langchain", PublicKey: "PEM", Status: AgentStatusSuspended,
		Capabilities: []string{"r"}, Metadata: map[string]any{"k": float64(1)}, CreatedAt: ts0, PrivateKey: "PRIV"}
	defaults := Agent{Framework: "custom", Status: AgentStatusActive}
	cases := []struct {
		name, body string
		want       Agent
	}{
		{"flat", full, want},
		{"wrapped", `{"agent":` + full + `,"id":"outer"}`, want},
		{"empty body", ``, defaults},
		{"null body", `null`, defaults},
		{"empty object", `{}`, defaults},
		{"nulls", `{"id":null,"framework":null,"status":null,"capabilities":null,"metadata":null,"created_at":null}`, defaults},
		{"unknown status kept", `{"status":"quarantined"}`, Agent{Framework: "custom", Status: "quarantined"}},
		{"bad timestamp", `{"id":"a","created_at":"yesterday"}`, Agent{ID: "a", Framework: "custom", Status: "active"}},
		{"wrapper null", `{"agent":null,"id":"x"}`, Agent{ID: "x", Framework: "custom", Status: "active"}},
	}
	for _, tc := range cases {
		srv.setHandler(reply(201, tc.body))
		for _, get := range []bool{false, true} {
			var a *Agent
			var err error
			if get {
				a, err = c.Agents.Get(ctxT(t), "a1")
			} else {
				a, err = c.Agents.Create(ctxT(t), AgentCreateParams{Name: "bot"})
			}
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if !a.CreatedAt.Equal(tc.want.CreatedAt) {
				t.Errorf("%s: created_at %v", tc.name, a.CreatedAt)
			}
			a.CreatedAt = tc.want.CreatedAt
			if !reflect.DeepEqual(*a, tc.want) {
				t.Errorf("%s:\n got  %#v\n want %#v", tc.name, *a, tc.want)
			}
		}
	}
	for _, body := range []string{`{"name":5}`, `{"capabilities":"r"}`, `{"capabilities":[1]}`, `{"metadata":[]}`,
		`{"status":1}`, `[]`, `"agent"`, `{"agent":{"id":false}}`} {
		srv.setHandler(reply(200, body))
		_, err := c.Agents.Get(ctxT(t), "a1")
		wantDecode(t, err)
	}
}

func TestAgentListDecoding(t *testing.T) {
	srv := newRecServer(t, nil)
	c := newTestClient(t, srv.URL)
	for body, n := range map[string]int{`[{"id":"a"},{"id":"b","status":"revoked"}]`: 2, `{"agents":[{"id":"a"}],"total":9}`: 1,
		`{"agents":null}`: 0, ``: 0} {
		srv.setHandler(reply(200, body))
		l, err := c.Agents.List(ctxT(t), nil)
		if err != nil || len(l) != n || l == nil {
			t.Errorf("%q: %v %v", body, l, err)
		}
		for _, a := range l {
			if a.Framework != "custom" || a.Status == "" {
				t.Errorf("list element without defaults: %+v", a)
			}
		}
	}
	for _, body := range []string{`{"unexpected":"shape"}`, `{"agents":{}}`, `[1]`, `[{"id":1}]`} {
		srv.setHandler(reply(200, body))
		_, err := c.Agents.List(ctxT(t), nil)
		wantDecode(t, err)
	}
}

func TestTokenDecoding(t *testing.T) {
	before := time.Now().UTC().Add(-time.Second)
	cases := []struct {
		name, body       string
		token, id, agent string
		scopes           []string
		issuedNow        bool
		issued, expires  time.Time
	}{
		{"primary keys", `{"token":"at_1","agent_id":"a","scopes":["r"],"audience":["x"],"issued_at":"2026-03-01T10:00:00Z","expires_at":"2026-03-01T10:05:00Z","token_id":"t1","id":"ignored","scope":["ignored"],"agent_token":"at_ignored"}`,
			"at_1", "t1", "a", []string{"r"}, false, ts0, ts0.Add(5 * time.Minute)},
		{"alternate keys", `{"agent_token":"at_2","scope":["w"],"id":"t2"}`, "at_2", "t2", "", []string{"w"}, true, time.Time{}, time.Time{}},
		{"nulls fall back", `{"token":null,"agent_token":"at_3","scopes":null,"scope":["s"],"token_id":null,"id":"t3","issued_at":null}`,
			"at_3", "t3", "", []string{"s"}, true, time.Time{}, time.Time{}},
		{"empty primary wins", `{"token":"","agent_token":"at_4","scopes":[],"scope":["s"]}`, "", "", "", []string{}, true, time.Time{}, time.Time{}},
		{"issued_at empty string", `{"issued_at":""}`, "", "", "", nil, true, time.Time{}, time.Time{}},
		{"issued_at malformed", `{"issued_at":"later"}`, "", "", "", nil, false, time.Time{}, time.Time{}},
		{"issued_at number", `{"issued_at":1700000000}`, "", "", "", nil, false, time.Time{}, time.Time{}},
		{"zone-less expiry", `{"expires_at":"2026-03-01T10:05:00.5"}`, "", "", "", nil, true, time.Time{}, ts0.Add(5*time.Minute + 500*time.Millisecond)},
	}
	srv := newRecServer(t, nil)
	c := newTestClient(t, srv.URL)
	for _, tc := range cases {
		srv.setHandler(reply(200, tc.body))
		tok, err := c.Tokens.Issue(ctxT(t), TokenIssueParams{AgentID: "a", NoCache: true})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if tok.Token != tc.token || tok.TokenID != tc.id || tok.AgentID != tc.agent || !reflect.DeepEqual(tok.Scopes, tc.scopes) ||
			!tok.ExpiresAt.Equal(tc.expires) {
			t.Errorf("%s: got %q %q %q %#v %v", tc.name, tok.Token, tok.TokenID, tok.AgentID, tok.Scopes, tok.ExpiresAt)
		}
		if tc.issuedNow {
			if tok.IssuedAt.Before(before) || tok.IssuedAt.After(time.Now().Add(time.Second)) || tok.IssuedAt.Location() != time.UTC {
				t.Errorf("%s: IssuedAt %v, want now in UTC", tc.name, tok.IssuedAt)
			}
		} else if !tok.IssuedAt.Equal(tc.issued) {
			t.Errorf("%s: IssuedAt %v, want %v", tc.name, tok.IssuedAt, tc.issued)
		}
	}
	for _, body := range []string{`{"token":5}`, `{"scopes":"r"}`, `{"agent_id":[]}`, `[]`, `{"token_id":1}`} {
		srv.setHandler(reply(200, body))
		_, err := c.Tokens.Issue(ctxT(t), TokenIssueParams{AgentID: "a", NoCache: true})
		wantDecode(t, err)
	}
}

func TestTokenExpiryAndTTL(t *testing.T) {
	clk := newFakeClock(ts0)
	tok := &Token{ExpiresAt: ts0.Add(90*time.Second + 900*time.Millisecond), now: clk.Now}
	cases := []struct {
		at      time.Duration
		ttl     time.Duration
		expired bool
	}{
		{0, 90 * time.Second, false},
		{900 * time.Millisecond, 90 * time.Second, false},
		{60*time.Second + 100*time.Millisecond, 30 * time.Second, false},
		{90*time.Second + 900*time.Millisecond, 0, false}, // exactly at expiry: not yet strictly after
		{91 * time.Second, 0, true},
		{time.Hour, 0, true},
	}
	for _, tc := range cases {
		clk.t = ts0.Add(tc.at)
		if tok.TTL() != tc.ttl || tok.IsExpired() != tc.expired {
			t.Errorf("at +%v: TTL %v expired %v, want %v %v", tc.at, tok.TTL(), tok.IsExpired(), tc.ttl, tc.expired)
		}
	}
	var unknown Token
	if unknown.IsExpired() || unknown.TTL() != 0 {
		t.Errorf("unknown expiry")
	}
	// Without an injected clock the wall clock is used.
	past := Token{ExpiresAt: time.Now().Add(-time.Second)}
	future := Token{ExpiresAt: time.Now().Add(time.Hour)}
	if !past.IsExpired() || future.IsExpired() || future.TTL() < 59*time.Minute {
		t.Errorf("wall clock")
	}
}

func TestIntrospectionDecoding(t *testing.T) {
	srv := newRecServer(t, nil)
	c := newTestClient(t, srv.URL)
	srv.setHandler(reply(200, `{"active":true,"agent_id":"a1","org_id":"o1","scopes":["read"],"expires_at":"2026-03-01T10:00:00Z","valid":false,"scope":["x"]}`))
	r, err := c.Tokens.Introspect(ctxT(t), TokenIntrospectParams{Token: "at_x"})
	if err != nil || !r.Active || r.AgentID != "a1" || r.OrgID != "o1" || !reflect.DeepEqual(r.Scopes, []string{"read"}) || !r.ExpiresAt.Equal(ts0) {
		t.Errorf("%+v %v", r, err)
	}
	srv.setHandler(reply(200, `{"active":false,"reasoning":"token revoked","expires_at":"nope"}`))
	r, err = c.Tokens.Verify(ctxT(t), TokenIntrospectParams{Token: "at_x"})
	if err != nil || r.Active || r.Reasoning != "token revoked" || !r.ExpiresAt.IsZero() {
		t.Errorf("%+v %v", r, err)
	}
	srv.setHandler(reply(200, `{"valid":true,"scope":["x"]}`)) // no fallbacks for introspection
	r, err = c.Tokens.Introspect(ctxT(t), TokenIntrospectParams{Token: "at_x"})
	if err != nil || r.Active || len(r.Scopes) != 0 {
		t.Errorf("%+v %v", r, err)
	}
	for _, body := range []string{`{"active":"yes"}`, `{"scopes":"r"}`, `[]`} {
		srv.setHandler(reply(200, body))
		_, err := c.Tokens.Introspect(ctxT(t), TokenIntrospectParams{Token: "at_x"})
		wantDecode(t, err)
	}
}

func TestActionCheckDecoding(t *testing.T) {
	srv := newRecServer(t, nil)
	c := newTestClient(t, srv.URL)
	f := func(v float64) *float64 { return &v }
	i := func(v int) *int { return &v }
	cases := []struct {
		body    string
		want    ActionCheckResult
		decided bool
	}{
		{`{"allowed":true,"check_id":"chk-1","confidence":0.98,"guard_tier":"fast","latency_ms":3,"reason":"read-only tool","elevation_required":false}`,
			ActionCheckResult{Allowed: true, CheckID: "chk-1", Confidence: f(0.98), GuardTier: "fast", LatencyMs: i(3), Reason: "read-only tool"}, true},
		{`{"allowed":false,"elevation_required":true,"approval_id":"ap-1","confidence":1}`,
			ActionCheckResult{ElevationRequired: true, ApprovalID: "ap-1", Confidence: f(1)}, true},
		{`{}`, ActionCheckResult{}, false},
		{``, ActionCheckResult{}, false},
		{`{"allowed":null,"confidence":null,"latency_ms":null}`, ActionCheckResult{}, false},
	}
	for _, tc := range cases {
		srv.setHandler(reply(200, tc.body))
		r, err := c.Actions.Check(ctxT(t), ActionCheckParams{AgentID: "a"})
		if err != nil {
			t.Fatalf("%s: %v", tc.body, err)
		}
		if r.Decided() != tc.decided {
			t.Errorf("%s: Decided %v", tc.body, r.Decided())
		}
		r.decided = false
		if !reflect.DeepEqual(*r, tc.want) {
			t.Errorf("%s:\n got  %+v\n want %+v", tc.body, *r, tc.want)
		}
	}
	for _, body := range []string{`{"allowed":"true"}`, `{"allowed":1}`, `{"latency_ms":3.5}`, `{"confidence":"high"}`, `{"reason":false}`, `[true]`} {
		srv.setHandler(reply(200, body))
		_, err := c.Actions.Check(ctxT(t), ActionCheckParams{AgentID: "a"})
		wantDecode(t, err)
	}
}

func TestSessionDecoding(t *testing.T) {
	srv := newRecServer(t, nil)
	c := newTestClient(t, srv.URL)
	body := `{"session_id":"s1","agent_id":"a1","org_id":"o1","source":"mcp","server_id":"srv","delegation_id":"d","provider_id":"p",
		"issuer":"iss","trust_level":"high","mode":"read_only","allowed_actions":["read"],"scope_ceiling":["x"],"total_calls":5,
		"read_calls":3,"write_calls":1,"denied_calls":1,"created_at":"2026-03-01T10:00:00Z","last_activity_at":"2026-03-01 10:00:00.5"}`
	want := Session{SessionID: "s1", AgentID: "a1", OrgID: "o1", Source: "mcp", ServerID: "srv", DelegationID: "d", ProviderID: "p",
		Issuer: "iss", TrustLevel: "high", Mode: "read_only", AllowedActions: []string{"read"}, ScopeCeiling: []string{"x"},
		TotalCalls: 5, ReadCalls: 3, WriteCalls: 1, DeniedCalls: 1}
	calls := map[string]func() (*Session, error){
		"InitSession":    func() (*Session, error) { return c.Sessions.InitSession(ctxT(t), "a1", "srv") },
		"GetSession":     func() (*Session, error) { return c.Sessions.GetSession(ctxT(t), "s1") },
		"InitAPISession": func() (*Session, error) { return c.Sessions.InitAPISession(ctxT(t), "eyJ") },
	}
	for name, call := range calls {
		srv.setHandler(reply(200, body))
		s, err := call()
		if err != nil {
			t.Fatal(err)
		}
		if !s.CreatedAt.Equal(ts0) || !s.LastActivityAt.Equal(ts0.Add(500*time.Millisecond)) {
			t.Errorf("%s: times %v %v", name, s.CreatedAt, s.LastActivityAt)
		}
		s.CreatedAt, s.LastActivityAt = time.Time{}, time.Time{}
		if !reflect.DeepEqual(*s, want) {
			t.Errorf("%s:\n got  %+v\n want %+v", name, *s, want)
		}
		// A wrapped reply is not unwrapped: all defaults.
		srv.setHandler(reply(200, `{"session":{"session_id":"s1"}}`))
		if s, err = call(); err != nil || s.SessionID != "" {
			t.Errorf("%s wrapped: %+v %v", name, s, err)
		}
		srv.setHandler(reply(200, `{"total_calls":1.5}`))
		_, err = call()
		wantDecode(t, err)
		srv.setHandler(reply(200, `{"allowed_actions":[1]}`))
		_, err = call()
		wantDecode(t, err)
	}
}

func TestApprovalDecoding(t *testing.T) {
	srv := newRecServer(t, nil)
	c := newTestClient(t, srv.URL)
	srv.setHandler(reply(200, `{"id":"ap","session_id":"s","agent_id":"a","org_id":"o","action_name":"deploy","action_effect":"admin",
		"status":"approved","created_at":"2026-03-01T10:00:00Z","expires_at":"bad","decided_by":"alice"}`))
	a, err := c.Approvals.Get(ctxT(t), "ap")
	want := ApprovalRequest{ID: "ap", SessionID: "s", AgentID: "a", OrgID: "o", ActionName: "deploy", ActionEffect: "admin",
		Status: "approved", CreatedAt: a.CreatedAt, DecidedBy: "alice"}
	if err != nil || !reflect.DeepEqual(*a, want) || !a.CreatedAt.Equal(ts0) {
		t.Errorf("%+v %v", a, err)
	}
	for _, body := range []string{``, `{}`, `{"status":null}`} {
		srv.setHandler(reply(200, body))
		a, err := c.Approvals.Get(ctxT(t), "ap")
		if err != nil || a.Status != ApprovalPending {
			t.Errorf("%q: status %q %v", body, a.Status, err)
		}
	}
	srv.setHandler(reply(200, `{"status":3}`))
	_, err = c.Approvals.Get(ctxT(t), "ap")
	wantDecode(t, err)
	// Approve and Deny return the raw object.
	srv.setHandler(reply(200, `{"status":"approved","extra":{"n":1}}`))
	m, err := c.Approvals.Approve(ctxT(t), "ap", "")
	if err != nil || m["status"] != "approved" || m["extra"] == nil {
		t.Errorf("%v %v", m, err)
	}
	srv.setHandler(reply(200, `["denied"]`))
	_, err = c.Approvals.Deny(ctxT(t), "ap", "")
	wantDecode(t, err)
}

func TestOrganizationDecoding(t *testing.T) {
	var o Organization
	if err := json.Unmarshal([]byte(`{"id":"o","name":"n","settings":{"a":1},"created_at":"2026-03-01T10:00:00Z"}`), &o); err != nil {
		t.Fatal(err)
	}
	if o.Tier != "free" || o.ID != "o" || !o.CreatedAt.Equal(ts0) || o.Settings["a"] != float64(1) {
		t.Errorf("%+v", o)
	}
	if err := json.Unmarshal([]byte(`{"tier":"pro","created_at":7}`), &o); err != nil || o.Tier != "pro" || !o.CreatedAt.IsZero() || o.ID != "" {
		t.Errorf("%+v %v", o, err)
	}
	if err := json.Unmarshal([]byte(`{"tier":1}`), &o); err == nil {
		t.Errorf("wrong type accepted")
	}
}

func TestTokenStringHidesSecret(t *testing.T) {
	tok := Token{Token: "at_SUPERSECRET", TokenID: "tid", AgentID: "a1", Scopes: []string{"r"}, ExpiresAt: ts0}
	for _, f := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
		for _, v := range []any{tok, &tok, []Token{tok}, map[string]*Token{"k": &tok}} {
			out := fmt.Sprintf(f, v)
			if strings.Contains(out, "SUPERSECRET") {
				t.Errorf("%s of %T reveals the token: %s", f, v, out)
			}
		}
	}
	if s := tok.String(); !strings.Contains(s, "at_[redacted]") || !strings.Contains(s, "tid") {
		t.Errorf("String() = %s", s)
	}
	if s := (Token{Token: "opaque"}).String(); strings.Contains(s, "opaque") {
		t.Errorf("String() = %s", s)
	}
}
