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

// K7: denials are logged at info, fail-opens at warning, and neither log
// line carries the input summary or the API key.
func TestCheckLogsDenialsAndFailOpens(t *testing.T) {
	gw := newGateway(t)
	gw.setCheck(func(w http.ResponseWriter, r *http.Request, body map[string]any) {
		writeJSON(w, 200, `{"allowed": false, "reason": "destructive", "check_id": "chk-9"}`)
	})
	rec := &logRecorder{}
	g, err := New(newClient(t, gw.srv.URL), "agent-1", WithLogger(slog.New(rec)))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close(context.Background())
	const summary = "secret-input-summary"
	if _, err := g.Check(context.Background(), "rm", summary); err == nil {
		t.Fatal("denial returned no error")
	}
	if n := rec.count(slog.LevelInfo, "tool denied"); n != 1 {
		t.Errorf("%d info records for a denial, want 1", n)
	}

	down, err := New(newClient(t, closedURL(t)), "agent-1", WithLogger(slog.New(rec)), WithFailOpen(true), WithCheckTimeout(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer down.Close(context.Background())
	if d, err := down.Check(context.Background(), "ls", summary); err != nil || !d.FailedOpen {
		t.Fatalf("fail-open check: %+v %v", d, err)
	}
	if n := rec.count(slog.LevelWarn, "failing open"); n != 1 {
		t.Errorf("%d warning records for a fail-open, want 1", n)
	}
	if out := rec.text(); strings.Contains(out, summary) || strings.Contains(out, testKey) {
		t.Errorf("logs carry the summary or the key:\n%s", out)
	}
}

// R4 and R8: one log line per overflow episode, and one for Reports after
// Close, however many events are dropped.
func TestReporterLogsDropsOncePerEpisode(t *testing.T) {
	gw := newGateway(t)
	release := make(chan struct{})
	gw.setReport(func(w http.ResponseWriter, r *http.Request, n int) bool {
		select { // hold the first batch in flight, so the queue stays full
		case <-release:
		case <-r.Context().Done():
		}
		return false
	})
	rec := &logRecorder{}
	g, err := New(newClient(t, gw.srv.URL), "agent-1", WithLogger(slog.New(rec)),
		WithBatchSize(10), WithQueueCapacity(10), WithFlushInterval(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 25; i++ {
		g.Report(ToolEnd("t", time.Millisecond))
	}
	if s := g.Stats(); s.Dropped != 15 {
		t.Errorf("dropped %d, want 15", s.Dropped)
	}
	if n := rec.count(slog.LevelWarn, "queue full"); n != 1 {
		t.Errorf("%d overflow records for one episode, want 1", n)
	}
	close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := g.Close(ctx); err != nil {
		t.Fatalf("close: %v", err)
	}
	for i := 0; i < 3; i++ {
		g.Report(ToolEnd("t", time.Millisecond))
	}
	if n := rec.count(slog.LevelWarn, "after Close"); n != 1 {
		t.Errorf("%d records for Reports after Close, want 1", n)
	}
	if s := g.Stats(); s.Sent != 10 || s.Dropped != 18 || s.Reported != 28 || s.Pending != 0 {
		t.Errorf("stats %+v", s)
	}
}
