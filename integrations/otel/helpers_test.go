package agenttrustotel_test

import (
	"context"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	agenttrust "github.com/agenttrustid/agenttrust-go"
	"github.com/agenttrustid/agenttrust-go/agenttrusttest"
	agenttrustotel "github.com/agenttrustid/agenttrust-go/integrations/otel"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// harness is a fake gateway (split listeners) and a Client observed by the
// OpenTelemetry observer, with in-memory span and metric readers.
type harness struct {
	srv    *agenttrusttest.Server
	spans  *tracetest.SpanRecorder
	tp     *sdktrace.TracerProvider
	reader *sdkmetric.ManualReader
	obs    *agenttrust.Observer
	client *agenttrust.Client
}

func newHarness(t *testing.T, opts ...agenttrustotel.Option) *harness {
	t.Helper()
	h := &harness{srv: agenttrusttest.NewTestServer(t, agenttrusttest.WithSplitListeners())}
	h.spans = tracetest.NewSpanRecorder()
	h.tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(h.spans))
	h.reader = sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(h.reader))
	t.Cleanup(func() {
		_ = h.tp.Shutdown(context.Background())
		_ = mp.Shutdown(context.Background())
	})
	obs, err := agenttrustotel.New(append([]agenttrustotel.Option{
		agenttrustotel.WithTracerProvider(h.tp), agenttrustotel.WithMeterProvider(mp)}, opts...)...)
	require.NoError(t, err)
	h.obs = obs
	h.client = h.newClient(t, agenttrust.WithObserver(obs))
	return h
}

func (h *harness) newClient(t *testing.T, opts ...agenttrust.Option) *agenttrust.Client {
	t.Helper()
	c, err := agenttrust.New(append([]agenttrust.Option{
		agenttrust.WithBaseURL(h.srv.URL()), agenttrust.WithAuthURL(h.srv.AuthURL()),
		agenttrust.WithAuditURL(h.srv.AuditURL()), agenttrust.WithAPIKey(h.srv.APIKey()),
		agenttrust.WithRetryPolicy(agenttrust.RetryPolicy{MaxRetries: 2, InitialBackoff: time.Millisecond,
			MaxBackoff: 2 * time.Millisecond, MaxRetryAfter: 5 * time.Millisecond}),
	}, opts...)...)
	require.NoError(t, err)
	return c
}

// ended returns the ended spans, in the order they ended.
func (h *harness) ended() []sdktrace.ReadOnlySpan { return h.spans.Ended() }

// attrs renders attributes as a map of strings.
func attrs(kvs []attribute.KeyValue) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		m[string(kv.Key)] = kv.Value.String()
	}
	return m
}

func render(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "\n  %s=%s", k, m[k])
	}
	return b.String()
}

// points collects the metrics: each point is "name{attrs}" mapped to its
// value for sums and to "count=N" for histograms.
func (h *harness) points(t *testing.T) map[string]string {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, h.reader.Collect(context.Background(), &rm))
	out := map[string]string{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					out[m.Name+setString(p.Attributes)] = strconv.FormatInt(p.Value, 10)
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					if p.Count > 0 {
						assert.Positive(t, p.Sum, "%s%s: %d durations adding up to %v", m.Name, setString(p.Attributes), p.Count, p.Sum)
					}
					out[m.Name+setString(p.Attributes)] = "count=" + strconv.FormatUint(p.Count, 10)
				}
			default:
				require.Failf(t, "unexpected metric data", "%T for %s", m.Data, m.Name)
			}
		}
	}
	return out
}

func setString(s attribute.Set) string {
	var parts []string
	for _, kv := range s.ToSlice() {
		parts = append(parts, string(kv.Key)+"="+kv.Value.String())
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// units returns the unit of every metric by name.
func (h *harness) units(t *testing.T) map[string]string {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, h.reader.Collect(context.Background(), &rm))
	out := map[string]string{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			out[m.Name] = m.Unit
		}
	}
	return out
}

// hostPort splits a service URL into the server attributes.
func hostPort(t *testing.T, raw string) (string, string) {
	t.Helper()
	u, err := url.Parse(raw)
	require.NoError(t, err)
	return u.Hostname(), u.Port()
}

// requestAttrs are the attributes of a call's span without its result.
func requestAttrs(t *testing.T, service, method, op, tmpl string) map[string]string {
	host, port := hostPort(t, service)
	return map[string]string{
		"http.request.method":  method,
		"server.address":       host,
		"server.port":          port,
		"agenttrust.operation": op,
		"url.template":         tmpl,
		"url.scheme":           "http",
	}
}

// metricKey renders the http.client.request.duration point key of a call.
func requestMetric(t *testing.T, service, method, op, tmpl string, status int, errType string) string {
	host, port := hostPort(t, service)
	kv := []attribute.KeyValue{
		attribute.String("http.request.method", method),
		attribute.String("server.address", host),
		attribute.String("agenttrust.operation", op),
		attribute.String("url.template", tmpl),
	}
	p, _ := strconv.Atoi(port)
	kv = append(kv, attribute.Int("server.port", p))
	if status != 0 {
		kv = append(kv, attribute.Int("http.response.status_code", status))
	}
	if errType != "" {
		kv = append(kv, attribute.String("error.type", errType))
	}
	return agenttrustotel.MetricRequestDuration + setString(attribute.NewSet(kv...))
}

func with(m map[string]string, kv ...string) map[string]string {
	out := make(map[string]string, len(m)+len(kv)/2)
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}
