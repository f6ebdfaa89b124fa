package agenttrust

import (
	"reflect"
	"testing"
)

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
				// A caller-supplied key: nothing is generated, so the
				// decoded model is exactly what the server sent.
				a, err = c.Agents.Create(ctxT(t), AgentCreateParams{Name: "bot", PublicKey: vecPubPEM})
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
		l, err := c.Agents.List(ctxT(t), AgentListParams{})
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
		_, err := c.Agents.List(ctxT(t), AgentListParams{})
		wantDecode(t, err)
	}
}
