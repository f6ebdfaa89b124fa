package agenttrusttest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// siemReceiver is a loopback SIEM endpoint that records deliveries.
type siemReceiver struct {
	mu     sync.Mutex
	status int
	auth   []string
	bodies [][]byte
}

func (sr *siemReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	sr.mu.Lock()
	sr.auth = append(sr.auth, r.Header.Get("Authorization"))
	sr.bodies = append(sr.bodies, body)
	status := sr.status
	sr.mu.Unlock()
	w.WriteHeader(status)
}

func TestSIEMTestDelivers(t *testing.T) {
	rcv := &siemReceiver{status: 200}
	dst := httptest.NewServer(rcv)
	defer dst.Close()

	srv := NewTestServer(t)
	c := newClient(t, srv)
	created := c.gw("POST", "/api/v1/siem/destinations", fmt.Sprintf(
		`{"name": "splunk", "destination_type": "splunk_hec", "endpoint_url": %q, "auth_token": "s3cret", "batch_size": 0}`, dst.URL)).must(t, 201)
	id := created.str("id")
	if id == "" || created.json["is_active"] != true || created.json["batch_size"] != float64(0) || created.str("destination_type") != "splunk_hec" {
		t.Fatalf("created %s", created.raw)
	}

	r := c.gw("POST", "/api/v1/siem/destinations/"+id+"/test", "").must(t, 200)
	if r.json["ok"] != true {
		t.Fatalf("test %s", r.raw)
	}
	rcv.mu.Lock()
	if len(rcv.auth) != 1 || rcv.auth[0] != "Bearer s3cret" {
		t.Fatalf("receiver auth %v", rcv.auth)
	}
	var batch map[string]any
	if err := json.Unmarshal(rcv.bodies[0], &batch); err != nil || len(batch["events"].([]any)) != 1 {
		t.Fatalf("receiver body %s", rcv.bodies[0])
	}
	rcv.status = 503
	rcv.mu.Unlock()

	r = c.gw("POST", "/api/v1/siem/destinations/"+id+"/test", "").must(t, 200)
	if r.json["ok"] != false || r.json["status_code"] != float64(503) {
		t.Fatalf("failed test %s", r.raw)
	}
	logs := c.gw("GET", "/api/v1/siem/destinations/"+id+"/logs", "").must(t, 200).json["logs"].([]any)
	if len(logs) != 2 {
		t.Fatalf("%d logs", len(logs))
	}
	first, second := logs[0].(map[string]any), logs[1].(map[string]any)
	if first["status"] != "success" || first["status_code"] != float64(200) || first["destination_id"] != id || first["delivered_at"] == nil {
		t.Fatalf("first delivery %v", first)
	}
	if second["status"] != "failed" || second["status_code"] != float64(503) || second["error_message"] == "" {
		t.Fatalf("second delivery %v", second)
	}
	// The token is never logged in the delivery records.
	for _, l := range logs {
		if b, _ := json.Marshal(l); strings.Contains(string(b), "s3cret") {
			t.Fatalf("token in delivery log: %s", b)
		}
	}
}

func TestSIEMCRUD(t *testing.T) {
	srv := NewTestServer(t)
	c := newClient(t, srv)
	id := c.gw("POST", "/api/v1/siem/destinations", `{"name": "hook", "destination_type": "webhook", "endpoint_url": "http://127.0.0.1:9/x"}`).must(t, 201).str("id")

	// Partial update: zero values reach the state; other fields stay.
	r := c.gw("PUT", "/api/v1/siem/destinations/"+id, `{"is_active": false, "batch_size": 0, "filter_event_types": []}`).must(t, 200)
	if r.json["is_active"] != false || r.json["batch_size"] != float64(0) || r.str("name") != "hook" || r.json["flush_interval_seconds"] != float64(30) {
		t.Fatalf("update %s", r.raw)
	}
	r = c.gw("PUT", "/api/v1/siem/destinations/"+id, `{"destination_type": "splunk"}`).must(t, 400)
	if r.errMsg() != `unknown key "destination_type"` {
		t.Fatalf("destination_type change: %s", r.raw)
	}
	c.gw("PUT", "/api/v1/siem/destinations/"+id, `{"batch_size": "10"}`).must(t, 400)
	if g := c.gw("GET", "/api/v1/siem/destinations/"+id, "").must(t, 200); g.str("destination_type") != "webhook" || g.json["is_active"] != false {
		t.Fatalf("get %s", g.raw)
	}
	l := c.gw("GET", "/api/v1/siem/destinations", "").must(t, 200)
	if l.json["total"] != float64(1) || len(l.json["destinations"].([]any)) != 1 {
		t.Fatalf("list %s", l.raw)
	}
	// A delivery to a closed port fails without failing the call.
	if r := c.gw("POST", "/api/v1/siem/destinations/"+id+"/test", "").must(t, 200); r.json["ok"] != false || r.str("error") == "" {
		t.Fatalf("test to closed port %s", r.raw)
	}
	c.gw("DELETE", "/api/v1/siem/destinations/"+id, "").must(t, 204)
	c.gw("GET", "/api/v1/siem/destinations/"+id, "").must(t, 404)
	c.gw("GET", "/api/v1/siem/destinations/"+id+"/logs", "").must(t, 404)
	c.gw("POST", "/api/v1/siem/destinations", `{"name": "x", "destination_type": "webhook", "endpoint_url": "ftp://x"}`).must(t, 400)
}
