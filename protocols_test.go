package agenttrust

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// protoIDCall is one protocol method that takes an id in its path.
type protoIDCall struct {
	name, method, tmpl string // tmpl holds {} where the escaped id goes
	call               func(ctx context.Context, c *Client, id string) error
}

func protoIDCalls() []protoIDCall {
	return []protoIDCall{
		{"AgentCards.Generate", "POST", "/api/v1/agents/{}/card", func(ctx context.Context, c *Client, id string) error {
			_, err := c.AgentCards.Generate(ctx, id)
			return err
		}},
		{"AgentCards.Get", "GET", "/api/v1/agents/{}/card", func(ctx context.Context, c *Client, id string) error {
			_, err := c.AgentCards.Get(ctx, id)
			return err
		}},
		{"AgentCards.Publish", "PUT", "/api/v1/agents/{}/card/publish", func(ctx context.Context, c *Client, id string) error {
			_, err := c.AgentCards.Publish(ctx, id)
			return err
		}},
		{"AgentCards.GetPublic", "GET", "/a2a/agents/{}/agent.json", func(ctx context.Context, c *Client, id string) error {
			_, err := c.AgentCards.GetPublic(ctx, id)
			return err
		}},
		{"A2A.SendMessage", "POST", "/a2a/agents/{}", func(ctx context.Context, c *Client, id string) error {
			_, err := c.A2A.SendMessage(ctx, id, A2ASendMessageParams{Text: "hi"})
			return err
		}},
		{"MCP.RemoveServer", "DELETE", "/mcp/servers/{}", func(ctx context.Context, c *Client, id string) error {
			return c.MCP.RemoveServer(ctx, id)
		}},
		{"MCP.CallTool", "POST", "/mcp/{}", func(ctx context.Context, c *Client, id string) error {
			_, err := c.MCP.CallTool(ctx, id, MCPCallToolParams{AgentID: "a1", Method: "tools/list"})
			return err
		}},
		{"Delegations.Revoke", "DELETE", "/api/v1/delegations/{}", func(ctx context.Context, c *Client, id string) error {
			return c.Delegations.Revoke(ctx, id)
		}},
		{"Delegations.InitSession", "POST", "/api/v1/delegations/{}/session", func(ctx context.Context, c *Client, id string) error {
			_, err := c.Delegations.InitSession(ctx, id)
			return err
		}},
		{"Federation.DeleteProvider", "DELETE", "/api/v1/federation/providers/{}", func(ctx context.Context, c *Client, id string) error {
			return c.Federation.DeleteProvider(ctx, id)
		}},
		{"Streaming.Get", "GET", "/api/v1/siem/destinations/{}", func(ctx context.Context, c *Client, id string) error {
			_, err := c.Streaming.Get(ctx, id)
			return err
		}},
		{"Streaming.Update", "PUT", "/api/v1/siem/destinations/{}", func(ctx context.Context, c *Client, id string) error {
			_, err := c.Streaming.Update(ctx, id, StreamingUpdateParams{IsActive: Ptr(true)})
			return err
		}},
		{"Streaming.Delete", "DELETE", "/api/v1/siem/destinations/{}", func(ctx context.Context, c *Client, id string) error {
			return c.Streaming.Delete(ctx, id)
		}},
		{"Streaming.DeliveryLog", "GET", "/api/v1/siem/destinations/{}/logs", func(ctx context.Context, c *Client, id string) error {
			_, err := c.Streaming.DeliveryLog(ctx, id, StreamingDeliveryLogParams{})
			return err
		}},
		{"Streaming.Test", "POST", "/api/v1/siem/destinations/{}/test", func(ctx context.Context, c *Client, id string) error {
			_, err := c.Streaming.Test(ctx, id)
			return err
		}},
	}
}

func TestProtocolHostileIDs(t *testing.T) {
	ctx := context.Background()
	srv := newScriptServer(t)
	c := srv.client(t)
	hostile := []string{"../admin", "a/b", "a?b=c", "%2e%2e", "a#frag", "sp ace", "ünï", "..%2f", "x/../../y"}
	rejected := []string{"", ".", ".."}
	for _, call := range protoIDCalls() {
		t.Run(call.name, func(t *testing.T) {
			for _, id := range hostile {
				body := `{}`
				if strings.HasSuffix(call.tmpl, "/logs") {
					body = `[]`
				}
				srv.reset(scriptReply{body: body})
				if err := call.call(ctx, c, id); !assert.NoError(t, err, "%q", id) {
					continue
				}
				r := srv.only(t)
				want := strings.Replace(call.tmpl, "{}", url.PathEscape(id), 1)
				assert.Equal(t, call.method, r.Method, "%q: sent %s %s, want %s %s", id, r.Method, r.RequestURI, call.method, want)
				assert.Equal(t, want, r.RequestURI, "%q: sent %s %s, want %s %s", id, r.Method, r.RequestURI, call.method, want)
				// The id is exactly one segment, and decodes back to itself.
				segs := strings.Split(r.RequestURI, "/")
				tmplSegs := strings.Split(call.tmpl, "/")
				if !assert.Len(t, segs, len(tmplSegs), "%q: segments in %s", id, r.RequestURI) {
					continue
				}
				for i, s := range tmplSegs {
					if s == "{}" {
						got, err := url.PathUnescape(segs[i])
						require.NoError(t, err, "%q: segment %q decodes to %q", id, segs[i], got)
						assert.Equal(t, id, got, "%q: segment %q decodes to %q", id, segs[i], got)
					}
				}
			}
			for _, id := range rejected {
				srv.reset()
				err := call.call(ctx, c, id)
				e := wantCode(t, err, CodeValidation)
				assert.Equal(t, 0, e.Status, "%q: status %d", id, e.Status)
				n := len(srv.requests())
				assert.Equal(t, 0, n, "%q: %d requests sent", id, n)
			}
		})
	}
}

func TestProtocolNetworkFailures(t *testing.T) {
	// A closed listener: every call is a NETWORK_ERROR.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	c, err := New(WithBaseURL("http://"+addr), WithRetryPolicy(RetryPolicy{}))
	require.NoError(t, err)
	ctx := context.Background()
	for _, call := range protoIDCalls() {
		err := call.call(ctx, c, "id-1")
		assert.ErrorIs(t, err, ErrNetwork, "%s on a closed port: %v", call.name, err)
	}

	// A hanging handler: the caller's deadline ends the call.
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer hang.Close()
	defer close(release)
	c, err = New(WithBaseURL(hang.URL), WithRetryPolicy(RetryPolicy{}))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = c.MCP.CallTool(ctx, "s1", MCPCallToolParams{AgentID: "a1", Method: "tools/list"})
	assert.ErrorIs(t, err, ErrNetwork, "hanging call_tool: %v", err)
	assert.ErrorIs(t, err, context.DeadlineExceeded, "hanging call_tool: %v", err)
	assert.LessOrEqual(t, time.Since(start), 5*time.Second, "call took %v", time.Since(start))
}

func TestProtocolServicesWired(t *testing.T) {
	c, err := New()
	require.NoError(t, err)
	require.NotNil(t, c.AgentCards, "unwired services: %+v", c)
	require.NotNil(t, c.A2A, "unwired services: %+v", c)
	require.NotNil(t, c.MCP, "unwired services: %+v", c)
	require.NotNil(t, c.Delegations, "unwired services: %+v", c)
	require.NotNil(t, c.Federation, "unwired services: %+v", c)
	require.NotNil(t, c.Streaming, "unwired services: %+v", c)
}
