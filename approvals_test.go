package agenttrust

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestApprovalDecoding(t *testing.T) {
	srv := newRecServer(t, nil)
	c := newTestClient(t, srv.URL)
	srv.setHandler(reply(200, `{"id":"ap","session_id":"s","agent_id":"a","org_id":"o","action_name":"deploy","action_effect":"admin",
		"status":"approved","created_at":"2026-03-01T10:00:00Z","expires_at":"bad","decided_by":"alice"}`))
	a, err := c.Approvals.Get(ctxT(t), "ap")
	want := ApprovalRequest{ID: "ap", SessionID: "s", AgentID: "a", OrgID: "o", ActionName: "deploy", ActionEffect: "admin",
		Status: "approved", CreatedAt: a.CreatedAt, DecidedBy: "alice"}
	require.NoError(t, err, "%+v", a)
	assert.Equal(t, want, *a, "%+v %v", a, err)
	assert.True(t, a.CreatedAt.Equal(ts0), "%+v %v", a, err)
	for _, body := range []string{``, `{}`, `{"status":null}`} {
		srv.setHandler(reply(200, body))
		a, err := c.Approvals.Get(ctxT(t), "ap")
		require.NoError(t, err, "%q: status %q", body, a.Status)
		assert.Equal(t, ApprovalPending, a.Status, "%q: status %q %v", body, a.Status, err)
	}
	srv.setHandler(reply(200, `{"status":3}`))
	_, err = c.Approvals.Get(ctxT(t), "ap")
	wantDecode(t, err)
	// Approve and Deny return the raw object.
	srv.setHandler(reply(200, `{"status":"approved","extra":{"n":1}}`))
	m, err := c.Approvals.Approve(ctxT(t), "ap", "")
	require.NoError(t, err, "%v", m)
	assert.Equal(t, "approved", m["status"], "%v %v", m, err)
	assert.NotNil(t, m["extra"], "%v %v", m, err)
	srv.setHandler(reply(200, `["denied"]`))
	_, err = c.Approvals.Deny(ctxT(t), "ap", "")
	wantDecode(t, err)
}
