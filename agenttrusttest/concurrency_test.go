package agenttrusttest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestConcurrentUse drives every kind of state change from many goroutines
// at once, alongside the test helpers; run it with -race.
func TestConcurrentUse(t *testing.T) {
	srv := NewTestServer(t)
	c := newClient(t, srv)
	shared := srv.CreateAgent("shared", "read")
	srv.RequireElevation("deploy")

	const workers, rounds = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers*rounds*4)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < rounds; i++ {
				name := fmt.Sprintf("agent-%d-%d", w, i)
				if r := c.gw("POST", "/api/v1/agents", fmt.Sprintf(`{"name": %q, "framework": "custom", "capabilities": ["read"], "metadata": {}}`, name)); r.status != 201 {
					errs <- fmt.Errorf("create: %d %s", r.status, r.raw)
				}
				if r := c.auth("POST", "/api/v1/agent-tokens/issue", issueBody(shared, 60, "read")); r.status != 200 {
					errs <- fmt.Errorf("issue: %d %s", r.status, r.raw)
				}
				if r := c.auth("POST", "/api/v1/agenttrust/check", checkBody(shared, fmt.Sprint(w), "deploy")); r.status != 200 {
					errs <- fmt.Errorf("check: %d %s", r.status, r.raw)
				}
				if r := c.do("POST", srv.AuditURL()+"/api/v1/telemetry/report", `{"agent_id": "a", "session_id": "s", "events": [{"event_type": "tool_start", "tool_name": "t", "timestamp": "2026-03-01T10:00:00Z"}]}`); r.status != 200 {
					errs <- fmt.Errorf("report: %d %s", r.status, r.raw)
				}
				srv.DenyTool(fmt.Sprint("tool", w), "x")
				srv.AllowTool(fmt.Sprint("tool", w))
				srv.Advance(time.Millisecond)
				_ = srv.Requests()
				_ = srv.Checks()
			}
		}(w)
	}
	// Same name from every worker: exactly one create wins.
	var dupWins sync.Map
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			r := c.gw("POST", "/api/v1/agents", `{"name": "contested", "framework": "custom", "capabilities": [], "metadata": {}}`)
			dupWins.Store(w, r.status)
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		assert.NoError(t, err)
	}
	created := 0
	dupWins.Range(func(_, v any) bool {
		if v == 201 {
			created++
		}
		return true
	})
	require.EqualValues(t, 1, created, "%d concurrent creates of one name succeeded", created)
	n := len(srv.Checks())
	require.Equal(t, workers*rounds, n, "%d checks", n)
	n = len(srv.TelemetryEvents())
	require.Equal(t, workers*rounds, n, "%d events", n)
	// One pending approval per session, reused by every later check.
	ids := map[string]bool{}
	for w := 0; w < workers; w++ {
		r := c.auth("POST", "/api/v1/agenttrust/check", checkBody(shared, fmt.Sprint(w), "deploy"))
		ids[r.str("approval_id")] = true
	}
	require.Len(t, ids, workers, "%d approvals for %d sessions", len(ids), workers)
}
