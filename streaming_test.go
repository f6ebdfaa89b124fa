package agenttrust

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const siemSecret = "hec-token-3f9a7c"

var sampleDestination = `{"id": "dst-1", "org_id": "org-1", "name": "splunk", "destination_type": "splunk_hec",
	"endpoint_url": "https://splunk:8088", "auth_token": "` + siemSecret + `", "is_active": true, "batch_size": 100,
	"flush_interval_seconds": 5, "filter_event_types": ["check"], "created_at": "2026-03-01T10:00:00Z", "updated_at": ""}`

func checkDestination(t *testing.T, d *SIEMDestination) {
	t.Helper()
	assert.Equal(t, "dst-1", d.ID, "destination = %+v", *d)
	assert.Equal(t, "org-1", d.OrgID, "destination = %+v", *d)
	assert.Equal(t, "splunk_hec", d.DestinationType, "destination = %+v", *d)
	assert.Equal(t, siemSecret, d.AuthToken, "destination = %+v", *d)
	assert.True(t, d.IsActive, "destination = %+v", *d)
	assert.Equal(t, 100, d.BatchSize, "destination = %+v", *d)
	assert.Equal(t, 5, d.FlushIntervalSeconds, "destination = %+v", *d)
	assert.Len(t, d.FilterEventTypes, 1, "destination = %+v", *d)
	assert.False(t, d.CreatedAt.IsZero(), "destination = %+v", *d)
	assert.True(t, d.UpdatedAt.IsZero(), "destination = %+v", *d)
}

func TestStreamingCreate(t *testing.T) {
	ctx := context.Background()
	srv := newScriptServer(t)
	c := srv.client(t)
	base := map[string]any{"name": "splunk", "destination_type": "splunk_hec", "endpoint_url": "https://splunk:8088"}
	with := func(kv ...any) map[string]any {
		m := map[string]any{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	for _, tc := range []struct {
		name string
		p    StreamingCreateParams
		want map[string]any
		keys []string
	}{
		{"required only", StreamingCreateParams{}, base, []string{"name", "destination_type", "endpoint_url"}},
		{"zero values are sent", StreamingCreateParams{AuthToken: Ptr(""), BatchSize: Ptr(0), FlushIntervalSeconds: Ptr(0), FilterEventTypes: []string{}},
			with("auth_token", "", "batch_size", 0, "flush_interval_seconds", 0, "filter_event_types", []any{}),
			[]string{"name", "destination_type", "endpoint_url", "auth_token", "batch_size", "flush_interval_seconds", "filter_event_types"}},
		{"all", StreamingCreateParams{AuthToken: Ptr(siemSecret), BatchSize: Ptr(100), FlushIntervalSeconds: Ptr(5), FilterEventTypes: []string{"check", "tool_end"}},
			with("auth_token", siemSecret, "batch_size", 100, "flush_interval_seconds", 5, "filter_event_types", []any{"check", "tool_end"}),
			[]string{"name", "destination_type", "endpoint_url", "auth_token", "batch_size", "flush_interval_seconds", "filter_event_types"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv.reset(scriptReply{status: 201, body: sampleDestination})
			tc.p.Name, tc.p.DestinationType, tc.p.EndpointURL = "splunk", "splunk_hec", "https://splunk:8088"
			d, err := c.Streaming.Create(ctx, tc.p)
			require.NoError(t, err)
			r := srv.only(t)
			checkRequest(t, r, http.MethodPost, "/api/v1/siem/destinations")
			checkBody(t, r, tc.want)
			assert.Equal(t, tc.keys, keyOrder(t, r.Body))
			checkDestination(t, d)
		})
	}
}

func TestStreamingUpdate(t *testing.T) {
	ctx := context.Background()
	srv := newScriptServer(t)
	c := srv.client(t)
	for _, tc := range []struct {
		name string
		p    StreamingUpdateParams
		want map[string]any
		keys []string
	}{
		{"false and zero reach the wire", StreamingUpdateParams{IsActive: Ptr(false), BatchSize: Ptr(0)},
			map[string]any{"is_active": false, "batch_size": 0}, []string{"is_active", "batch_size"}},
		{"empty strings and list", StreamingUpdateParams{Name: Ptr(""), FilterEventTypes: []string{}},
			map[string]any{"name": "", "filter_event_types": []any{}}, []string{"name", "filter_event_types"}},
		{"all, in order", StreamingUpdateParams{
			Name: Ptr("n"), EndpointURL: Ptr("https://e"), AuthToken: Ptr(siemSecret), IsActive: Ptr(true),
			BatchSize: Ptr(10), FlushIntervalSeconds: Ptr(0), FilterEventTypes: []string{"a"}},
			map[string]any{"name": "n", "endpoint_url": "https://e", "auth_token": siemSecret, "is_active": true, "batch_size": 10, "flush_interval_seconds": 0, "filter_event_types": []any{"a"}},
			[]string{"name", "endpoint_url", "auth_token", "is_active", "batch_size", "flush_interval_seconds", "filter_event_types"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv.reset(scriptReply{body: sampleDestination})
			d, err := c.Streaming.Update(ctx, "dst-1", tc.p)
			require.NoError(t, err)
			r := srv.only(t)
			checkRequest(t, r, http.MethodPut, "/api/v1/siem/destinations/dst-1")
			checkBody(t, r, tc.want)
			assert.Equal(t, tc.keys, keyOrder(t, r.Body))
			checkDestination(t, d)
		})
	}
	srv.reset()
	_, err := c.Streaming.Update(ctx, "dst-1", StreamingUpdateParams{})
	e := wantCode(t, err, CodeValidation)
	assert.Equal(t, 0, e.Status, "status %d", e.Status)
	_, err = c.Streaming.Update(ctx, "", StreamingUpdateParams{Name: Ptr("n")})
	wantCode(t, err, CodeValidation)
	n := len(srv.requests())
	assert.Equal(t, 0, n, "%d requests sent", n)
}

func TestStreamingReadDeleteLogTest(t *testing.T) {
	ctx := context.Background()
	srv := newScriptServer(t)
	c := srv.client(t)

	for _, body := range []string{`{"destinations": [` + sampleDestination + `], "total": 1}`, `[` + sampleDestination + `]`} {
		srv.reset(scriptReply{body: body})
		list, err := c.Streaming.List(ctx, StreamingListParams{})
		require.NoError(t, err, "%v", list)
		require.Len(t, list, 1, "%v, %v", list, err)
		checkDestination(t, &list[0])
		checkRequest(t, srv.only(t), http.MethodGet, "/api/v1/siem/destinations")
	}
	srv.reset(scriptReply{body: `{"total": 0}`})
	_, err := c.Streaming.List(ctx, StreamingListParams{})
	wantCode(t, err, CodeDecode)

	srv.reset(scriptReply{body: sampleDestination})
	d, err := c.Streaming.Get(ctx, "dst-1")
	require.NoError(t, err)
	checkRequest(t, srv.only(t), http.MethodGet, "/api/v1/siem/destinations/dst-1")
	checkDestination(t, d)

	srv.reset(scriptReply{status: 204})
	require.NoError(t, c.Streaming.Delete(ctx, "dst-1"))
	checkRequest(t, srv.only(t), http.MethodDelete, "/api/v1/siem/destinations/dst-1")

	srv.reset(scriptReply{body: `{"logs": [{"id": "l1", "destination_id": "dst-1", "batch_size": 1, "status": "success", "status_code": 200,
		"error_message": "", "delivered_at": "2026-03-01T10:00:00.25+02:00"}], "total": 1}`})
	logs, err := c.Streaming.DeliveryLog(ctx, "dst-1", StreamingDeliveryLogParams{})
	require.NoError(t, err, "%v", logs)
	require.Len(t, logs, 1, "%v, %v", logs, err)
	checkRequest(t, srv.only(t), http.MethodGet, "/api/v1/siem/destinations/dst-1/logs")
	l := logs[0]
	assert.Equal(t, "l1", l.ID, "record = %+v", l)
	assert.Equal(t, "dst-1", l.DestinationID, "record = %+v", l)
	assert.Equal(t, 1, l.BatchSize, "record = %+v", l)
	assert.Equal(t, "success", l.Status, "record = %+v", l)
	assert.Equal(t, 200, l.StatusCode, "record = %+v", l)
	assert.Equal(t, 8, l.DeliveredAt.UTC().Hour(), "record = %+v", l)
	assert.Equal(t, 250000000, l.DeliveredAt.Nanosecond(), "record = %+v", l)
	srv.reset(scriptReply{body: `{"logs": [{"status_code": "200"}]}`})
	_, err = c.Streaming.DeliveryLog(ctx, "dst-1", StreamingDeliveryLogParams{})
	wantCode(t, err, CodeDecode)

	for _, tc := range []struct {
		body string
		want int
	}{{`{"ok": true, "status_code": 200}`, 2}, {``, 0}, {`null`, 0}} {
		srv.reset(scriptReply{body: tc.body})
		res, err := c.Streaming.Test(ctx, "dst-1")
		require.NoError(t, err, "%q: %v", tc.body, res)
		require.NotNil(t, res, "%q: %v, %v", tc.body, res, err)
		assert.Len(t, res, tc.want, "%q: %v, %v", tc.body, res, err)
		checkBodiless(t, srv.only(t), http.MethodPost)
		checkRequest(t, srv.only(t), http.MethodPost, "/api/v1/siem/destinations/dst-1/test")
	}
	srv.reset(scriptReply{body: `[true]`})
	_, err = c.Streaming.Test(ctx, "dst-1")
	wantCode(t, err, CodeDecode)
}

func TestStreamingSecretsNeverPrinted(t *testing.T) {
	d := SIEMDestination{ID: "dst-1", Name: "splunk", AuthToken: siemSecret, BatchSize: 7}
	cp := StreamingCreateParams{Name: "splunk", AuthToken: Ptr(siemSecret), BatchSize: Ptr(3)}
	up := StreamingUpdateParams{AuthToken: Ptr(siemSecret), IsActive: Ptr(false)}
	values := []any{d, &d, []SIEMDestination{d}, map[string]any{"d": d}, struct{ D SIEMDestination }{d},
		cp, &cp, up, &up}
	leaks := []string{siemSecret, hex.EncodeToString([]byte(siemSecret)), strings.ToUpper(hex.EncodeToString([]byte(siemSecret)))}
	for _, v := range values {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T"} {
			out := fmt.Sprintf(verb, v)
			for _, leak := range leaks {
				assert.NotContains(t, out, leak, "%s of %T reveals the token: %s", verb, v, out)
			}
		}
	}
	out := fmt.Sprint(d)
	assert.Contains(t, out, "[redacted]", "String = %s", out)
	assert.Contains(t, out, `"dst-1"`, "String = %s", out)
	assert.Contains(t, out, "BatchSize: 7", "String = %s", out)
	out = fmt.Sprint(up)
	assert.Contains(t, out, "IsActive: false", "String = %s", out)
	assert.Contains(t, out, "Name: nil", "String = %s", out)
	var buf bytes.Buffer
	for _, h := range []slog.Handler{slog.NewJSONHandler(&buf, nil), slog.NewTextHandler(&buf, nil)} {
		slog.New(h).Info("siem", "dest", d, "create", cp, "update", up, "ptr", &d)
	}
	assert.NotContains(t, buf.String(), siemSecret, "slog output: %s", buf.String())
	assert.Contains(t, buf.String(), "dst-1", "slog output: %s", buf.String())
}

func TestStreamingSecretNotInErrors(t *testing.T) {
	// A gateway echoing the token in an error message does not leak it.
	srv := newScriptServer(t, scriptReply{status: 400, body: `{"message": "cannot reach endpoint with token ` + siemSecret + `"}`})
	c := srv.client(t)
	_, err1 := c.Streaming.Create(context.Background(), StreamingCreateParams{Name: "n", AuthToken: Ptr(siemSecret)})
	_, err2 := c.Streaming.Update(context.Background(), "dst-1", StreamingUpdateParams{AuthToken: Ptr(siemSecret)})
	for _, err := range []error{err1, err2} {
		e := wantCode(t, err, CodeValidation)
		assert.NotContains(t, err.Error(), siemSecret, "token leaked: %v", err)
		assert.NotContains(t, e.Message, siemSecret, "token leaked: %v", err)
	}
}
