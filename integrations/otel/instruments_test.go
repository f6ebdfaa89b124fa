package agenttrustotel_test

import (
	"errors"
	"testing"

	agenttrustotel "github.com/agenttrustid/agenttrust-go/integrations/otel"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
)

var errInstrument = errors.New("instrument refused")

// refusingMeter creates every instrument but the one named fail.
type refusingMeter struct {
	noop.Meter
	fail string
}

func (m refusingMeter) refuse(name string) error {
	if name == m.fail {
		return errInstrument
	}
	return nil
}

func (m refusingMeter) Float64Histogram(name string, opts ...metric.Float64HistogramOption) (metric.Float64Histogram, error) {
	h, _ := m.Meter.Float64Histogram(name, opts...)
	return h, m.refuse(name)
}

func (m refusingMeter) Int64Counter(name string, opts ...metric.Int64CounterOption) (metric.Int64Counter, error) {
	c, _ := m.Meter.Int64Counter(name, opts...)
	return c, m.refuse(name)
}

func (m refusingMeter) Int64UpDownCounter(name string, opts ...metric.Int64UpDownCounterOption) (metric.Int64UpDownCounter, error) {
	c, _ := m.Meter.Int64UpDownCounter(name, opts...)
	return c, m.refuse(name)
}

type refusingProvider struct {
	noop.MeterProvider
	fail string
}

func (p refusingProvider) Meter(string, ...metric.MeterOption) metric.Meter {
	return refusingMeter{fail: p.fail}
}

// New fails when any one of its instruments cannot be created, whichever.
func TestNewFailsWhenAnInstrumentIsRefused(t *testing.T) {
	obs, err := agenttrustotel.New(agenttrustotel.WithMeterProvider(refusingProvider{}))
	require.NoError(t, err, "no instrument refused")
	require.NotNil(t, obs)
	for _, name := range []string{
		agenttrustotel.MetricRequestDuration, agenttrustotel.MetricCheckDuration,
		agenttrustotel.MetricDecisions, agenttrustotel.MetricFailedOpen,
		agenttrustotel.MetricTelemetrySent, agenttrustotel.MetricTelemetryDropped,
		agenttrustotel.MetricTelemetryFailed, agenttrustotel.MetricTelemetryQueue,
		agenttrustotel.MetricCacheLookups,
	} {
		obs, err := agenttrustotel.New(agenttrustotel.WithMeterProvider(refusingProvider{fail: name}))
		assert.ErrorIs(t, err, errInstrument, "instrument %s refused", name)
		assert.Nil(t, obs, "instrument %s refused", name)
	}
}
