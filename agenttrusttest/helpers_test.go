package agenttrusttest

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// tclient sends raw requests to a fake with a plain net/http client.
type tclient struct {
	t   *testing.T
	srv *Server
	hc  *http.Client
	key string
}

func newClient(t *testing.T, srv *Server) *tclient {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &tclient{t: t, srv: srv, hc: &http.Client{Transport: tr}, key: srv.APIKey()}
}

// resp is a decoded reply.
type resp struct {
	status int
	header http.Header
	raw    []byte
	json   map[string]any
}

func (r resp) str(key string) string { s, _ := r.json[key].(string); return s }

// errMsg is the "error" member of an error body.
func (r resp) errMsg() string { return r.str("error") }

// do sends method to base+path with body ("" for none) and the API key.
func (c *tclient) do(method, url, body string) resp {
	c.t.Helper()
	return c.doHeaders(method, url, body, nil)
}

func (c *tclient) doHeaders(method, url, body string, hdr map[string]string) resp {
	c.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	require.NoError(c.t, err)
	if c.key != "" {
		req.Header.Set("X-API-Key", c.key)
	}
	if method == "POST" || method == "PUT" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
			continue
		}
		req.Header.Set(k, v)
	}
	res, err := c.hc.Do(req)
	require.NoError(c.t, err, "%s %s", method, url)
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	require.NoError(c.t, err)
	out := resp{status: res.StatusCode, header: res.Header, raw: raw}
	if len(raw) > 0 {
		_ = json.Unmarshal(raw, &out.json)
	}
	return out
}

func (c *tclient) gw(method, path, body string) resp {
	c.t.Helper()
	return c.do(method, c.srv.URL()+path, body)
}

func (c *tclient) auth(method, path, body string) resp {
	c.t.Helper()
	return c.do(method, c.srv.AuthURL()+path, body)
}

// must fails the test unless the reply has the status.
func (r resp) must(t *testing.T, status int) resp {
	t.Helper()
	require.Equal(t, status, r.status, "status %d, want %d; body %s", r.status, status, r.raw)
	return r
}

// jsonBody marshals v for a request.
func jsonBody(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

func strs(v any) []string {
	arr, _ := v.([]any)
	out := make([]string, 0, len(arr))
	for _, x := range arr {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}
