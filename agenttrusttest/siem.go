package agenttrusttest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// siemTestTimeout bounds the delivery made by the SIEM test endpoint.
const siemTestTimeout = 5 * time.Second

type siemDestination struct {
	ID                   string   `json:"id"`
	OrgID                string   `json:"org_id"`
	Name                 string   `json:"name"`
	DestinationType      string   `json:"destination_type"`
	EndpointURL          string   `json:"endpoint_url"`
	AuthToken            string   `json:"auth_token,omitempty"`
	IsActive             bool     `json:"is_active"`
	BatchSize            int      `json:"batch_size"`
	FlushIntervalSeconds int      `json:"flush_interval_seconds"`
	FilterEventTypes     []string `json:"filter_event_types"`
	CreatedAt            ts       `json:"created_at"`
	UpdatedAt            ts       `json:"updated_at"`
}

type siemDelivery struct {
	ID            string `json:"id"`
	DestinationID string `json:"destination_id"`
	BatchSize     int    `json:"batch_size"`
	Status        string `json:"status"`
	StatusCode    int    `json:"status_code"`
	ErrorMessage  string `json:"error_message"`
	DeliveredAt   ts     `json:"delivered_at"`
}

type createSIEMRequest struct {
	Name                 string    `json:"name" wire:"always,nonempty"`
	DestinationType      string    `json:"destination_type" wire:"always,nonempty"`
	EndpointURL          string    `json:"endpoint_url" wire:"always"`
	AuthToken            *string   `json:"auth_token"`
	BatchSize            *int      `json:"batch_size"`
	FlushIntervalSeconds *int      `json:"flush_interval_seconds"`
	FilterEventTypes     *[]string `json:"filter_event_types"`
}

// updateSIEMRequest has no destination_type: it cannot be changed, so
// sending it is an unknown key.
type updateSIEMRequest struct {
	Name                 *string   `json:"name"`
	EndpointURL          *string   `json:"endpoint_url"`
	AuthToken            *string   `json:"auth_token"`
	IsActive             *bool     `json:"is_active"`
	BatchSize            *int      `json:"batch_size"`
	FlushIntervalSeconds *int      `json:"flush_interval_seconds"`
	FilterEventTypes     *[]string `json:"filter_event_types"`
}

func (r createSIEMRequest) validate() string {
	return siemValuesErr(&r.EndpointURL, r.BatchSize, r.FlushIntervalSeconds)
}

func (r updateSIEMRequest) validate() string {
	return siemValuesErr(r.EndpointURL, r.BatchSize, r.FlushIntervalSeconds)
}

func siemValuesErr(endpoint *string, batch, flush *int) string {
	switch {
	case endpoint != nil && !validHTTPURL(*endpoint):
		return `key "endpoint_url" must be an absolute http(s) URL`
	case batch != nil && *batch < 0:
		return `key "batch_size" must not be negative`
	case flush != nil && *flush < 0:
		return `key "flush_interval_seconds" must not be negative`
	}
	return ""
}

func (s *Server) createSIEM(c *call, req createSIEMRequest) {
	now := ts(s.Now())
	d := &siemDestination{
		OrgID: c.org, Name: req.Name, DestinationType: req.DestinationType, EndpointURL: req.EndpointURL,
		IsActive: true, BatchSize: 100, FlushIntervalSeconds: 30, FilterEventTypes: []string{},
		CreatedAt: now, UpdatedAt: now,
	}
	if req.AuthToken != nil {
		d.AuthToken = *req.AuthToken
	}
	if req.BatchSize != nil {
		d.BatchSize = *req.BatchSize
	}
	if req.FlushIntervalSeconds != nil {
		d.FlushIntervalSeconds = *req.FlushIntervalSeconds
	}
	if req.FilterEventTypes != nil {
		d.FilterEventTypes = append([]string{}, *req.FilterEventTypes...)
	}
	c.reply(http.StatusCreated, insert(s, &s.st.siem, "siem", d, &d.ID))
}

func (s *Server) listSIEM(c *call) {
	out := listOf(s, &s.st.siem, func(d *siemDestination) bool { return d.OrgID == c.org })
	c.reply(http.StatusOK, map[string]any{"destinations": out, "total": len(out)})
}

func (s *Server) getSIEM(c *call) {
	if d, ok := getOr404(s, c, &s.st.siem, "destination_id", "destination not found"); ok {
		c.reply(http.StatusOK, d)
	}
}

// updateSIEM applies a partial update. An empty body (Python's update
// without fields) changes nothing.
func (s *Server) updateSIEM(c *call) {
	var req updateSIEMRequest
	if len(bytes.TrimSpace(c.body)) > 0 && !c.decode(&req) {
		return
	}
	now := ts(s.Now())
	var out siemDestination
	ok := updateOr404(s, c, &s.st.siem, "destination_id", "destination not found", func(d *siemDestination) {
		setIf(&d.Name, req.Name)
		setIf(&d.EndpointURL, req.EndpointURL)
		setIf(&d.AuthToken, req.AuthToken)
		setIf(&d.IsActive, req.IsActive)
		setIf(&d.BatchSize, req.BatchSize)
		setIf(&d.FlushIntervalSeconds, req.FlushIntervalSeconds)
		if req.FilterEventTypes != nil {
			d.FilterEventTypes = append([]string{}, *req.FilterEventTypes...)
		}
		d.UpdatedAt = now
		out = *d
	})
	if ok {
		c.reply(http.StatusOK, out)
	}
}

func setIf[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

func (s *Server) siemLogs(c *call) {
	id := c.param("destination_id")
	out := []siemDelivery{}
	if updateOr404(s, c, &s.st.siem, "destination_id", "destination not found", func(*siemDestination) {
		for _, rec := range s.st.deliveries {
			if rec.DestinationID == id {
				out = append(out, *rec)
			}
		}
	}) {
		c.reply(http.StatusOK, map[string]any{"logs": out})
	}
}

// testSIEM really POSTs a one-event JSON batch to the destination (with
// "Authorization: Bearer <auth_token>" when a token is set), records the
// delivery and answers {"ok": ...}. The token is never logged or recorded.
func (s *Server) testSIEM(c *call) {
	dest, ok := getOr404(s, c, &s.st.siem, "destination_id", "destination not found")
	if !ok {
		return
	}
	now := s.Now()
	batch, _ := json.Marshal(map[string]any{
		"source": "agenttrusttest", "destination_id": dest.ID, "test": true,
		"events": []any{map[string]any{
			"event_type": "siem.test", "timestamp": formatTime(now),
			"message": "AgentTrust SIEM test event",
		}},
	})
	rec := siemDelivery{DestinationID: dest.ID, BatchSize: 1, Status: "success"}
	rec.StatusCode, rec.ErrorMessage = s.deliver(c.ctx, dest, batch)
	if rec.ErrorMessage != "" {
		rec.Status = "failed"
	}
	s.mu.Lock()
	rec.ID, rec.DeliveredAt = s.st.nextID("dlv"), ts(s.Now())
	s.st.deliveries = append(s.st.deliveries, &rec)
	s.mu.Unlock()
	reply := map[string]any{"ok": rec.Status == "success", "delivery_id": rec.ID, "status_code": rec.StatusCode}
	if rec.ErrorMessage != "" {
		reply["error"] = rec.ErrorMessage
	}
	c.reply(http.StatusOK, reply)
}

// deliver posts batch to the destination and returns the status code and
// an error message ("" on a 2xx).
func (s *Server) deliver(ctx context.Context, dest siemDestination, batch []byte) (int, string) {
	ctx, cancel := context.WithTimeout(ctx, siemTestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, dest.EndpointURL, bytes.NewReader(batch))
	if err != nil {
		return 0, "invalid endpoint_url"
	}
	req.Header.Set("Content-Type", "application/json")
	if dest.AuthToken != "" {
		req.Header.Set("Authorization", "Bearer "+dest.AuthToken)
	}
	resp, err := s.outbound.Do(req)
	if err != nil {
		return 0, fmt.Sprintf("delivery failed: %v", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fmt.Sprintf("destination answered HTTP %d", resp.StatusCode)
	}
	return resp.StatusCode, ""
}
