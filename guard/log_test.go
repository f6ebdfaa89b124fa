package guard

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// logRecorder is a slog.Handler that keeps every record.
type logRecorder struct {
	mu      sync.Mutex
	records []slog.Record
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	l.records = append(l.records, r.Clone())
	l.mu.Unlock()
	return nil
}
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecorder) WithGroup(string) slog.Handler      { return l }

// count returns how many records at level have a message containing msg.
func (l *logRecorder) count(level slog.Level, msg string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.records {
		if r.Level == level && strings.Contains(r.Message, msg) {
			n++
		}
	}
	return n
}

// text renders every record with its attributes, to look for secrets.
func (l *logRecorder) text() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b bytes.Buffer
	h := slog.NewTextHandler(&b, nil)
	for _, r := range l.records {
		_ = h.Handle(context.Background(), r)
	}
	return b.String()
}

// Denials are logged at info, fail-opens at warning, and neither log
// line carries the input summary or the API key.
func TestCheckLogsDenialsAndFailOpens(t *testing.T) {
	gw := newGateway(t)
	gw.setCheck(func(w http.ResponseWriter, r *http.Request, body map[string]any) {
		writeJSON(w, 200, `{"allowed": false, "reason": "destructive", "check_id": "chk-9"}`)
	})
	rec := &logRecorder{}
	g, err := New(newClient(t, gw.srv.URL), "agent-1", WithLogger(slog.New(rec)))
	require.NoError(t, err)
	defer g.Close(context.Background())
	const summary = "secret-input-summary"
	_, err = g.Check(context.Background(), "rm", summary)
	require.Error(t, err, "denial returned no error")
	n := rec.count(slog.LevelInfo, "tool denied")
	assert.EqualValues(t, 1, n, "%d info records for a denial, want 1", n)

	down, err := New(newClient(t, closedURL(t)), "agent-1", WithLogger(slog.New(rec)), WithFailOpen(true), WithCheckTimeout(200*time.Millisecond))
	require.NoError(t, err)
	defer down.Close(context.Background())
	d, err := down.Check(context.Background(), "ls", summary)
	require.NoError(t, err, "fail-open check: %+v %v", d, err)
	require.True(t, d.FailedOpen, "fail-open check: %+v %v", d, err)
	n = rec.count(slog.LevelWarn, "failing open")
	assert.EqualValues(t, 1, n, "%d warning records for a fail-open, want 1", n)
	out := rec.text()
	assert.NotContains(t, out, summary, "logs carry the summary or the key:\n%s", out)
	assert.NotContains(t, out, testKey, "logs carry the summary or the key:\n%s", out)
}

// One log line per overflow episode, and one for Reports after
// Close, however many events are dropped.
func TestReporterLogsDropsOncePerEpisode(t *testing.T) {
	gw := newGateway(t)
	arrived := make(chan struct{}, 4)
	release := make(chan struct{})
	gw.setReport(func(w http.ResponseWriter, r *http.Request, n int) bool {
		arrived <- struct{}{}
		select { // hold the batch in flight, so the queue stays full
		case <-release:
		case <-r.Context().Done():
		}
		return false
	})
	rec := &logRecorder{}
	g, err := New(newClient(t, gw.srv.URL), "agent-1", WithLogger(slog.New(rec)),
		WithBatchSize(10), WithQueueCapacity(10), WithFlushInterval(time.Hour))
	require.NoError(t, err)
	// A full batch leaves the queue for the gateway, which holds it; only
	// then is the queue filled, so what is dropped does not depend on when
	// the reporter's goroutine runs.
	for i := 0; i < 10; i++ {
		g.Report(ToolEnd("t", time.Millisecond))
	}
	select {
	case <-arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("the first batch never reached the gateway")
	}
	for i := 0; i < 25; i++ {
		g.Report(ToolEnd("t", time.Millisecond))
	}
	s := g.Stats()
	assert.EqualValues(t, 15, s.Dropped, "dropped %d, want 15", s.Dropped)
	n := rec.count(slog.LevelWarn, "queue full")
	assert.EqualValues(t, 1, n, "%d overflow records for one episode, want 1", n)
	close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, g.Close(ctx), "close")
	for i := 0; i < 3; i++ {
		g.Report(ToolEnd("t", time.Millisecond))
	}
	n = rec.count(slog.LevelWarn, "after Close")
	assert.EqualValues(t, 1, n, "%d records for Reports after Close, want 1", n)
	s = g.Stats()
	assert.EqualValues(t, 20, s.Sent, "stats %+v", s)
	assert.EqualValues(t, 18, s.Dropped, "stats %+v", s)
	assert.EqualValues(t, 38, s.Reported, "stats %+v", s)
	assert.EqualValues(t, 0, s.Pending, "stats %+v", s)
}
