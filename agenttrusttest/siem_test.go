package agenttrusttest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
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
	require.NotEqual(t, "", id, "created %s", created.raw)
	require.Equal(t, true, created.json["is_active"], "created %s", created.raw)
	require.Equal(t, float64(0), created.json["batch_size"], "created %s", created.raw)
	require.Equal(t, "splunk_hec", created.str("destination_type"), "created %s", created.raw)

	r := c.gw("POST", "/api/v1/siem/destinations/"+id+"/test", "").must(t, 200)
	require.Equal(t, true, r.json["ok"], "test %s", r.raw)
	rcv.mu.Lock()
	require.Len(t, rcv.auth, 1, "receiver auth %v", rcv.auth)
	require.Equal(t, "Bearer s3cret", rcv.auth[0], "receiver auth %v", rcv.auth)
	var batch map[string]any
	err := json.Unmarshal(rcv.bodies[0], &batch)
	require.NoError(t, err, "receiver body %s", rcv.bodies[0])
	require.Len(t, batch["events"].([]any), 1, "receiver body %s", rcv.bodies[0])
	rcv.status = 503
	rcv.mu.Unlock()

	r = c.gw("POST", "/api/v1/siem/destinations/"+id+"/test", "").must(t, 200)
	require.Equal(t, false, r.json["ok"], "failed test %s", r.raw)
	require.Equal(t, float64(503), r.json["status_code"], "failed test %s", r.raw)
	logs := c.gw("GET", "/api/v1/siem/destinations/"+id+"/logs", "").must(t, 200).json["logs"].([]any)
	require.Len(t, logs, 2, "%d logs", len(logs))
	first, second := logs[0].(map[string]any), logs[1].(map[string]any)
	require.Equal(t, "success", first["status"], "first delivery %v", first)
	require.Equal(t, float64(200), first["status_code"], "first delivery %v", first)
	require.Equal(t, id, first["destination_id"], "first delivery %v", first)
	require.NotNil(t, first["delivered_at"], "first delivery %v", first)
	require.Equal(t, "failed", second["status"], "second delivery %v", second)
	require.Equal(t, float64(503), second["status_code"], "second delivery %v", second)
	require.NotEqual(t, "", second["error_message"], "second delivery %v", second)
	// The token is never logged in the delivery records.
	for _, l := range logs {
		b, _ := json.Marshal(l)
		require.NotContains(t, string(b), "s3cret", "token in delivery log: %s", b)
	}
}

func TestSIEMCRUD(t *testing.T) {
	srv := NewTestServer(t)
	c := newClient(t, srv)
	id := c.gw("POST", "/api/v1/siem/destinations", `{"name": "hook", "destination_type": "webhook", "endpoint_url": "http://127.0.0.1:9/x"}`).must(t, 201).str("id")

	// Partial update: zero values reach the state; other fields stay.
	r := c.gw("PUT", "/api/v1/siem/destinations/"+id, `{"is_active": false, "batch_size": 0, "filter_event_types": []}`).must(t, 200)
	require.Equal(t, false, r.json["is_active"], "update %s", r.raw)
	require.Equal(t, float64(0), r.json["batch_size"], "update %s", r.raw)
	require.Equal(t, "hook", r.str("name"), "update %s", r.raw)
	require.Equal(t, float64(30), r.json["flush_interval_seconds"], "update %s", r.raw)
	r = c.gw("PUT", "/api/v1/siem/destinations/"+id, `{"destination_type": "splunk"}`).must(t, 400)
	require.Equal(t, `unknown key "destination_type"`, r.errMsg(), "destination_type change: %s", r.raw)
	c.gw("PUT", "/api/v1/siem/destinations/"+id, `{"batch_size": "10"}`).must(t, 400)
	g := c.gw("GET", "/api/v1/siem/destinations/"+id, "").must(t, 200)
	require.Equal(t, "webhook", g.str("destination_type"), "get %s", g.raw)
	require.Equal(t, false, g.json["is_active"], "get %s", g.raw)
	l := c.gw("GET", "/api/v1/siem/destinations", "").must(t, 200)
	require.Equal(t, float64(1), l.json["total"], "list %s", l.raw)
	require.Len(t, l.json["destinations"].([]any), 1, "list %s", l.raw)
	// A delivery to a closed port fails without failing the call.
	r = c.gw("POST", "/api/v1/siem/destinations/"+id+"/test", "").must(t, 200)
	require.Equal(t, false, r.json["ok"], "test to closed port %s", r.raw)
	require.NotEqual(t, "", r.str("error"), "test to closed port %s", r.raw)
	c.gw("DELETE", "/api/v1/siem/destinations/"+id, "").must(t, 204)
	c.gw("GET", "/api/v1/siem/destinations/"+id, "").must(t, 404)
	c.gw("GET", "/api/v1/siem/destinations/"+id+"/logs", "").must(t, 404)
	c.gw("POST", "/api/v1/siem/destinations", `{"name": "x", "destination_type": "webhook", "endpoint_url": "ftp://x"}`).must(t, 400)
}
