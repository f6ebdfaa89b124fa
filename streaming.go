package agenttrust

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// StreamingService manages SIEM destinations, where the gateway streams
// audit events. Destination auth tokens are secrets: the SDK
// never logs them, and the types that hold them print them redacted.
type StreamingService service

// StreamingCreateParams are the arguments of Streaming.Create. Printing them
// never reveals AuthToken.
type StreamingCreateParams struct {
	Name string
	// DestinationType is e.g. "splunk_hec" or "webhook"; not validated.
	DestinationType string
	EndpointURL     string
	// AuthToken, sent when non-nil, authenticates the gateway at the
	// destination.
	AuthToken *string
	// BatchSize is sent when non-nil, even when it points to 0.
	BatchSize *int
	// FlushIntervalSeconds is sent when non-nil, even when it points to 0.
	FlushIntervalSeconds *int
	// FilterEventTypes is sent when non-nil; an empty, non-nil slice sends [].
	FilterEventTypes []string
}

// streamingWire is the body of a create (name, type and URL always set) and
// of an update (only what is set); nil fields are not sent.
type streamingWire struct {
	Name                 *string   `json:"name,omitempty"`
	DestinationType      *string   `json:"destination_type,omitempty"`
	EndpointURL          *string   `json:"endpoint_url,omitempty"`
	AuthToken            *string   `json:"auth_token,omitempty"`
	IsActive             *bool     `json:"is_active,omitempty"`
	BatchSize            *int      `json:"batch_size,omitempty"`
	FlushIntervalSeconds *int      `json:"flush_interval_seconds,omitempty"`
	FilterEventTypes     *[]string `json:"filter_event_types,omitempty"`
}

// save sends a create or update body and decodes the destination.
func (s *StreamingService) save(ctx context.Context, method, path string, w streamingWire, filter []string, opts []RequestOption) (*SIEMDestination, error) {
	if filter != nil {
		w.FilterEventTypes = &filter
	}
	return call[SIEMDestination](ctx, s.client, &request{method: method, path: path, body: &w, secrets: secretsOf(w.AuthToken)}, "", opts)
}

// String describes the params without the auth token.
func (p StreamingCreateParams) String() string {
	return joinFields("StreamingCreateParams",
		"Name", strconv.Quote(p.Name),
		"DestinationType", strconv.Quote(p.DestinationType),
		"EndpointURL", strconv.Quote(p.EndpointURL),
		"AuthToken", optSecret(p.AuthToken),
		"BatchSize", optInt(p.BatchSize),
		"FlushIntervalSeconds", optInt(p.FlushIntervalSeconds),
		"FilterEventTypes", optStrings(p.FilterEventTypes))
}

// GoString is String, so that %#v hides the auth token too.
func (p StreamingCreateParams) GoString() string { return p.String() }

// Format prints String for every verb.
func (p StreamingCreateParams) Format(f fmt.State, verb rune) { formatRedacted(f, verb, p, p) }

// LogValue hides the auth token from log/slog.
func (p StreamingCreateParams) LogValue() slog.Value { return slog.StringValue(p.String()) }

// Create adds a SIEM destination: POST /api/v1/siem/destinations.
func (s *StreamingService) Create(ctx context.Context, p StreamingCreateParams, opts ...RequestOption) (*SIEMDestination, error) {
	return s.save(ctx, http.MethodPost, "/api/v1/siem/destinations", streamingWire{Name: &p.Name, DestinationType: &p.DestinationType,
		EndpointURL: &p.EndpointURL, AuthToken: p.AuthToken, BatchSize: p.BatchSize, FlushIntervalSeconds: p.FlushIntervalSeconds},
		p.FilterEventTypes, opts)
}

// StreamingListParams are the arguments of Streaming.List; there are none
// yet.
type StreamingListParams struct{}

// List lists the SIEM destinations: GET /api/v1/siem/destinations.
func (s *StreamingService) List(ctx context.Context, _ StreamingListParams, opts ...RequestOption) ([]SIEMDestination, error) {
	return list[SIEMDestination](ctx, s.client, &request{path: "/api/v1/siem/destinations"}, "destinations", "", opts)
}

// Get reads a SIEM destination: GET /api/v1/siem/destinations/{destination_id}.
func (s *StreamingService) Get(ctx context.Context, destinationID string, opts ...RequestOption) (*SIEMDestination, error) {
	return callAt[SIEMDestination](ctx, s.client, http.MethodGet, "/api/v1/siem/destinations/{destination_id}", destinationID, "", opts)
}

// StreamingUpdateParams are the arguments of Streaming.Update, a partial
// update: only non-nil fields are sent, so zero values such as
// IsActive: Ptr(false) or BatchSize: Ptr(0) reach the gateway. At least one
// field must be set. The destination type cannot be changed. Printing the
// params never reveals AuthToken.
type StreamingUpdateParams struct {
	Name                 *string
	EndpointURL          *string
	AuthToken            *string
	IsActive             *bool
	BatchSize            *int
	FlushIntervalSeconds *int
	// FilterEventTypes is sent when non-nil; an empty, non-nil slice sends [].
	FilterEventTypes []string
}

// String describes the params without the auth token.
func (p StreamingUpdateParams) String() string {
	active := "nil"
	if p.IsActive != nil {
		active = strconv.FormatBool(*p.IsActive)
	}
	return joinFields("StreamingUpdateParams",
		"Name", optStr(p.Name),
		"EndpointURL", optStr(p.EndpointURL),
		"AuthToken", optSecret(p.AuthToken),
		"IsActive", active,
		"BatchSize", optInt(p.BatchSize),
		"FlushIntervalSeconds", optInt(p.FlushIntervalSeconds),
		"FilterEventTypes", optStrings(p.FilterEventTypes))
}

// GoString is String, so that %#v hides the auth token too.
func (p StreamingUpdateParams) GoString() string { return p.String() }

// Format prints String for every verb.
func (p StreamingUpdateParams) Format(f fmt.State, verb rune) { formatRedacted(f, verb, p, p) }

// LogValue hides the auth token from log/slog.
func (p StreamingUpdateParams) LogValue() slog.Value { return slog.StringValue(p.String()) }

// Update changes a SIEM destination: PUT
// /api/v1/siem/destinations/{destination_id} with the fields that are set.
// Params with no field set are a *ValidationError, returned before any I/O.
func (s *StreamingService) Update(ctx context.Context, destinationID string, p StreamingUpdateParams, opts ...RequestOption) (*SIEMDestination, error) {
	path, err := buildPath("/api/v1/siem/destinations/{destination_id}", destinationID)
	if err != nil {
		return nil, err
	}
	w := streamingWire{Name: p.Name, EndpointURL: p.EndpointURL, AuthToken: p.AuthToken, IsActive: p.IsActive,
		BatchSize: p.BatchSize, FlushIntervalSeconds: p.FlushIntervalSeconds}
	if w == (streamingWire{}) && p.FilterEventTypes == nil {
		return nil, validationErr("SIEM destination update with no fields: set at least one")
	}
	return s.save(ctx, http.MethodPut, path, w, p.FilterEventTypes, opts)
}

// Delete removes a SIEM destination:
// DELETE /api/v1/siem/destinations/{destination_id}. Any 2xx reply is
// success; its body is not read.
func (s *StreamingService) Delete(ctx context.Context, destinationID string, opts ...RequestOption) error {
	return deleteAt(ctx, s.client, "/api/v1/siem/destinations/{destination_id}", destinationID, opts)
}

// StreamingDeliveryLogParams are the arguments of Streaming.DeliveryLog
// besides the destination; there are none yet.
type StreamingDeliveryLogParams struct{}

// DeliveryLog lists the recent deliveries to a destination:
// GET /api/v1/siem/destinations/{destination_id}/logs.
func (s *StreamingService) DeliveryLog(ctx context.Context, destinationID string, _ StreamingDeliveryLogParams, opts ...RequestOption) ([]SIEMDeliveryRecord, error) {
	path, err := buildPath("/api/v1/siem/destinations/{destination_id}/logs", destinationID)
	if err != nil {
		return nil, err
	}
	return list[SIEMDeliveryRecord](ctx, s.client, &request{path: path}, "logs", "", opts)
}

// Test makes the gateway send a test delivery to the destination: a bodiless
// POST /api/v1/siem/destinations/{destination_id}/test. It returns the
// gateway's answer, e.g. {"ok": true}, uninterpreted.
func (s *StreamingService) Test(ctx context.Context, destinationID string, opts ...RequestOption) (map[string]any, error) {
	path, err := buildPath("/api/v1/siem/destinations/{destination_id}/test", destinationID)
	if err != nil {
		return nil, err
	}
	return callRaw(ctx, s.client, &request{method: http.MethodPost, path: path}, opts)
}

// SIEMDestination is where the gateway streams audit events.
// Printing it, with any fmt verb or through log/slog, never reveals AuthToken.
type SIEMDestination struct {
	ID              string `json:"id"`
	OrgID           string `json:"org_id"`
	Name            string `json:"name"`
	DestinationType string `json:"destination_type"`
	EndpointURL     string `json:"endpoint_url"`
	// AuthToken is a secret, present when the gateway echoes it.
	AuthToken            string    `json:"auth_token"`
	IsActive             bool      `json:"is_active"`
	BatchSize            int       `json:"batch_size"`
	FlushIntervalSeconds int       `json:"flush_interval_seconds"`
	FilterEventTypes     []string  `json:"filter_event_types"`
	CreatedAt            time.Time `json:"created_at"`
	UpdatedAt            time.Time `json:"updated_at"`
}

// UnmarshalJSON reads timestamps leniently.
func (d *SIEMDestination) UnmarshalJSON(b []byte) error {
	*d = SIEMDestination{}
	return unmarshalModel(b, d)
}

// String describes the destination without its auth token.
func (d SIEMDestination) String() string {
	return joinFields("SIEMDestination",
		"ID", strconv.Quote(d.ID),
		"OrgID", strconv.Quote(d.OrgID),
		"Name", strconv.Quote(d.Name),
		"DestinationType", strconv.Quote(d.DestinationType),
		"EndpointURL", strconv.Quote(d.EndpointURL),
		"AuthToken", redactedSecret(d.AuthToken),
		"IsActive", strconv.FormatBool(d.IsActive),
		"BatchSize", strconv.Itoa(d.BatchSize),
		"FlushIntervalSeconds", strconv.Itoa(d.FlushIntervalSeconds),
		"FilterEventTypes", optStrings(d.FilterEventTypes),
		"CreatedAt", d.CreatedAt.Format(time.RFC3339),
		"UpdatedAt", d.UpdatedAt.Format(time.RFC3339))
}

// GoString is String, so that %#v hides the auth token too.
func (d SIEMDestination) GoString() string { return d.String() }

// Format prints String for every verb.
func (d SIEMDestination) Format(f fmt.State, verb rune) { formatRedacted(f, verb, d, d) }

// LogValue hides the auth token from log/slog.
func (d SIEMDestination) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("id", d.ID), slog.String("org_id", d.OrgID), slog.String("name", d.Name),
		slog.String("destination_type", d.DestinationType), slog.String("endpoint_url", d.EndpointURL),
		secretAttr("auth_token", d.AuthToken != ""), slog.Bool("is_active", d.IsActive),
		slog.Int("batch_size", d.BatchSize), slog.Int("flush_interval_seconds", d.FlushIntervalSeconds),
		slog.Any("filter_event_types", d.FilterEventTypes))
}

// SIEMDeliveryRecord is one delivery attempt to a destination.
type SIEMDeliveryRecord struct {
	ID            string `json:"id"`
	DestinationID string `json:"destination_id"`
	BatchSize     int    `json:"batch_size"`
	// Status is e.g. "success".
	Status       string    `json:"status"`
	StatusCode   int       `json:"status_code"`
	ErrorMessage string    `json:"error_message"`
	DeliveredAt  time.Time `json:"delivered_at"`
}

// UnmarshalJSON reads timestamps leniently.
func (r *SIEMDeliveryRecord) UnmarshalJSON(b []byte) error {
	*r = SIEMDeliveryRecord{}
	return unmarshalModel(b, r)
}

func optSecret(p *string) string {
	if p == nil {
		return "nil"
	}
	return redactedSecret(*p)
}

func optStrings(s []string) string {
	if s == nil {
		return "nil"
	}
	q := make([]string, len(s))
	for i, v := range s {
		q[i] = strconv.Quote(v)
	}
	return "[" + strings.Join(q, " ") + "]"
}

func secretsOf(p *string) []string {
	if p == nil {
		return nil
	}
	return []string{*p}
}
