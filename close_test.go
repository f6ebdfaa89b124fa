package agenttrust

import (
	"net/http"
	"net/http/httptrace"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// Close releases every connection of a Client, and with them their
// goroutines, while the server is still up: 50 short-lived clients once
// left 150 goroutines alive for 90 s. A call in flight during Close and a
// call made after it leave nothing behind either.
func TestCloseReleasesConnections(t *testing.T) {
	release := make(chan struct{})
	srv := newRecServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-release
		}
		w.WriteHeader(200)
		_, _ = w.Write([]byte(`{}`))
	})
	ignore := goleak.IgnoreCurrent()

	var clients []*Client
	for i := 0; i < 20; i++ {
		c := newTestClient(t, srv.URL)
		clients = append(clients, c)
		var wg sync.WaitGroup
		for j := 0; j < 3; j++ { // concurrent calls: several connections per client
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := c.Health(ctxT(t)); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
	}
	// A call in flight when Close runs.
	slow := clients[0]
	done := make(chan error, 1)
	go func() {
		_, err := slow.do(ctxT(t), &request{method: http.MethodGet, path: "/slow", idempotent: true})
		done <- err
	}()
	for deadline := time.Now().Add(10 * time.Second); srv.count() < 61; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the slow request never reached the server")
		}
	}
	for _, c := range clients {
		for i := 0; i < 2; i++ { // idempotent
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
		}
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// A call after Close still works and keeps no connection.
	if _, err := clients[1].Health(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	goleak.VerifyNone(t, ignore)
}

// A transport the caller passed in is the caller's to release: Close keeps
// its idle connections, so the caller's other users of it keep them too.
func TestCloseLeavesCallersTransport(t *testing.T) {
	srv := newRecServer(t, reply(200, `{}`))
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	c := newTestClient(t, srv.URL, WithHTTPClient(&http.Client{Transport: tr}))
	if _, err := c.Health(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
	var reused bool
	ctx := httptrace.WithClientTrace(ctxT(t), &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }})
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/health", nil)
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !reused {
		t.Error("Close closed the idle connections of the caller's transport")
	}
}
