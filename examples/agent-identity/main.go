// Command agent-identity shows an agent's cryptographic identity end to end:
// an Ed25519 key generated locally and kept in a key store, a WIMSE workload
// token obtained with a proof of possession, and Guardian checks that carry
// that token with a fresh DPoP proof each, against a gateway that requires
// sender-constrained tokens. It finally replays one proof by hand to show
// that the gateway refuses it.
//
// It runs offline on the in-memory fake gateway:
//
//	go run ./examples/agent-identity
package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	agenttrust "github.com/agenttrustid/agenttrust-go"
	"github.com/agenttrustid/agenttrust-go/agenttrusttest"
	"github.com/agenttrustid/agenttrust-go/guard"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := run(ctx, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "agent-identity failed:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out io.Writer) error {
	say := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }

	// A gateway that wants proof of possession for WIMSE tokens and
	// sender-constrained tokens on every check.
	srv, err := agenttrusttest.NewServer(agenttrusttest.WithSplitListeners())
	if err != nil {
		return err
	}
	defer srv.Close()
	srv.SetSecuritySettings(agenttrusttest.SecuritySettings{RequireProofOfPossession: true, RequireSenderConstrainedTokens: true})
	srv.DenyTool("delete_file", "destructive tools are not allowed")

	client, err := agenttrust.New(agenttrust.WithBaseURL(srv.URL()), agenttrust.WithAuthURL(srv.AuthURL()),
		agenttrust.WithAuditURL(srv.AuditURL()), agenttrust.WithAPIKey(srv.APIKey()))
	if err != nil {
		return err
	}

	// 1. Register the agent. The key pair is generated here; only the public
	// key is sent, and the private key goes straight into the key store.
	keys := agenttrust.NewInMemoryKeyStore()
	agent, err := client.Agents.Create(ctx, agenttrust.AgentCreateParams{Name: "invoice-bot", KeyStore: keys})
	if err != nil {
		return err
	}
	say("registered %s with a local Ed25519 key (%d key in the store; private key never sent)", agent.ID, keys.Len())

	// 2. A WIMSE token with proof of possession: challenge, signed pop-v1
	// message, token bound to the key.
	tok, err := client.WIMSE.IssueTokenWithProof(ctx, agenttrust.WIMSEProofParams{AgentID: agent.ID, KeyStore: keys})
	if err != nil {
		return err
	}
	v, err := client.WIMSE.VerifyToken(ctx, tok.Token, "")
	if err != nil {
		return err
	}
	say("WIMSE token for %s: valid=%v", tok.WorkloadID, v.Valid)

	// 3. Without credentials the gateway refuses checks.
	_, err = client.Actions.Check(ctx, agenttrust.ActionCheckParams{AgentID: agent.ID, ToolName: "read_file"})
	say("check without credentials: refused=%v", errors.Is(err, agenttrust.ErrAuthentication))

	// 4. With agent credentials installed, a guard's checks carry the token
	// and a fresh DPoP proof each.
	creds, err := client.NewAgentCredentials(agenttrust.AgentCredentialsParams{
		AgentID: agent.ID, KeyStore: keys, PublicKeyPEM: agent.PublicKey,
	})
	if err != nil {
		return err
	}
	if err := client.UseAgentCredentials(creds); err != nil {
		return err
	}
	g, err := guard.New(client, agent.ID)
	if err != nil {
		return err
	}
	defer g.Close(ctx)
	for _, tool := range []string{"read_file", "read_file", "delete_file"} {
		d, err := g.Check(ctx, tool, "")
		var de *guard.DeniedError
		switch {
		case errors.As(err, &de):
			say("guard: %-11s denied: %s", tool, de.Reason)
		case err != nil:
			return err
		default:
			say("guard: %-11s allowed=%v", tool, d.Allowed)
		}
	}
	say("sender-constrained checks accepted: %d; WIMSE tokens issued: %d (step 2's, and one cached for all checks)",
		accepted(srv), len(srv.WIMSETokens()))

	// 5. Replaying a proof: send the same DPoP proof twice by hand.
	status, err := replay(ctx, srv, creds, keys, agent)
	if err != nil {
		return err
	}
	var reason agenttrusttest.RejectionReason
	if rej := srv.IdentityRejections(); len(rej) > 0 {
		reason = rej[len(rej)-1].Reason
	}
	say("replayed DPoP proof: first %d, replay %d (%s)", status[0], status[1], reason)
	return nil
}

func accepted(srv *agenttrusttest.Server) int {
	n := 0
	for _, p := range srv.DPoPProofs() {
		if p.Accepted {
			n++
		}
	}
	return n
}

// replay sends one check twice with the same proof and returns both statuses.
func replay(ctx context.Context, srv *agenttrusttest.Server, creds *agenttrust.AgentCredentials,
	keys agenttrust.KeyStore, agent *agenttrust.Agent) ([2]int, error) {
	var status [2]int
	token, err := creds.Token(ctx)
	if err != nil {
		return status, err
	}
	url := srv.AuthURL() + "/api/v1/agenttrust/check"
	proof, err := agenttrust.MintDPoPProofWithKeyStore(ctx, keys, agent.ID, agent.PublicKey, http.MethodPost, url, token)
	if err != nil {
		return status, err
	}
	body := `{"agent_id":"` + agent.ID + `","session_id":"","action_name":"read_file","action_source":"api","action_input_summary":""}`
	for i := range status {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader([]byte(body)))
		if err != nil {
			return status, err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-API-Key", srv.APIKey())
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("DPoP", proof)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return status, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		status[i] = resp.StatusCode
	}
	if status[0] != http.StatusOK || status[1] != http.StatusUnauthorized {
		return status, errors.New("unexpected statuses " + strings.Trim(fmt.Sprint(status), "[]"))
	}
	return status, nil
}
