package agenttrust_test

import (
	"context"
	"testing"

	agenttrust "github.com/agenttrustid/agenttrust-go"
	"github.com/agenttrustid/agenttrust-go/guard"
	"github.com/agenttrustid/agenttrust-go/internal/allocs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// BenchmarkCheckGuard is guard.Check against the same server as
// BenchmarkCheck and BenchmarkCheckBaseline, so that the three compare in one
// run: the guard's cost over Actions.Check is its own work.
func BenchmarkCheckGuard(b *testing.B) {
	c, err := agenttrust.New(agenttrust.WithBaseURL(agenttrust.BenchServerURL(b)), agenttrust.WithAPIKey(agenttrust.TestKey))
	require.NoError(b, err)
	p := agenttrust.BenchParams
	g, err := guard.New(c, p.AgentID, guard.WithSessionID(p.SessionID))
	require.NoError(b, err)
	defer g.Close(context.Background())
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	cpu, ok := agenttrust.ProcessCPU()
	for i := 0; i < b.N; i++ {
		d, err := g.Check(ctx, p.ToolName, p.ToolInputSummary)
		if err != nil {
			b.Fatal(err)
		}
		if !d.Allowed {
			b.Fatalf("%v %v", d, err)
		}
	}
	agenttrust.ReportCPU(b, cpu, ok)
}

// TestGuardCheckAllocs keeps guard.Check within one allocation of
// Actions.Check against the same server.
func TestGuardCheckAllocs(t *testing.T) {
	c, err := agenttrust.New(agenttrust.WithBaseURL(agenttrust.BenchServerURL(t)), agenttrust.WithAPIKey(agenttrust.TestKey))
	require.NoError(t, err)
	p := agenttrust.BenchParams
	g, err := guard.New(c, p.AgentID, guard.WithSessionID(p.SessionID))
	require.NoError(t, err)
	defer g.Close(context.Background())
	ctx := context.Background()
	check := allocs.Least(300, nil, func() {
		_, err := c.Actions.Check(ctx, p)
		require.NoError(t, err)
	})
	gc := allocs.Least(300, nil, func() {
		_, err := g.Check(ctx, p.ToolName, p.ToolInputSummary)
		require.NoError(t, err)
	})
	t.Logf("allocs per check: Actions.Check %v, guard.Check %v", check, gc)
	assert.LessOrEqual(t, gc, check+1, "guard.Check allocates %v times, Actions.Check %v: more than one above", gc, check)
}
