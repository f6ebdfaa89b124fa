package agenttrustkeyring

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	agenttrust "github.com/agenttrustid/agenttrust-go"
	"github.com/stretchr/testify/require"
)

const osProbeEnv = "AGENTTRUSTKEYRING_OS_PROBE"

// osProbeResult is what the child process reports about the real keychain.
type osProbeResult struct {
	Available bool   `json:"available"`
	StoreErr  string `json:"store_err,omitempty"`
	// Typing of the Store error when the keychain is unavailable.
	IsKeychain, IsKeyStore, IsAgentTrust, IsValidation, IsNotFound bool
	// Results of the round trip when it is available.
	SignVerified, NotFoundAfterDelete, DeleteAgainOK bool
	Steps                                            string
}

// runOSProbe stores a fresh key in the real keychain under a throwaway
// service, signs with it, deletes it, and prints what happened as JSON.
func runOSProbe() int {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var res osProbeResult
	pair, err := agenttrust.GenerateAgentKey()
	if err != nil {
		res.Steps = "generate key: " + err.Error()
		return printProbe(res)
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	agentID := "agenttrust-go-test-" + hex.EncodeToString(b)
	s := New(WithService("agenttrust-id-go-test"))
	if err := s.Store(ctx, agentID, pair.PrivateKeyPEM); err != nil {
		res.StoreErr = err.Error()
		res.IsKeychain = errors.Is(err, ErrKeychain)
		res.IsKeyStore = errors.Is(err, agenttrust.ErrKeyStore)
		res.IsAgentTrust = errors.Is(err, agenttrust.ErrAgentTrust)
		var ve *agenttrust.ValidationError
		res.IsValidation = errors.As(err, &ve)
		res.IsNotFound = errors.Is(err, agenttrust.ErrKeyNotFound)
		return printProbe(res)
	}
	res.Available = true
	defer func() { _ = s.Delete(context.Background(), agentID) }()
	pub, _ := agenttrust.ParsePublicKeyPEM(pair.PublicKeyPEM)
	sig, err := s.Sign(ctx, agentID, []byte("probe"))
	res.SignVerified = err == nil && ed25519.Verify(pub, []byte("probe"), sig)
	if err != nil {
		res.Steps += "sign: " + err.Error() + "; "
	}
	if err := s.Delete(ctx, agentID); err != nil {
		res.Steps += "delete: " + err.Error() + "; "
	}
	_, err = s.Sign(ctx, agentID, []byte("probe"))
	res.NotFoundAfterDelete = errors.Is(err, agenttrust.ErrKeyNotFound)
	res.DeleteAgainOK = s.Delete(ctx, agentID) == nil
	return printProbe(res)
}

func printProbe(res osProbeResult) int {
	out, _ := json.Marshal(res)
	os.Stdout.Write(append(out, '\n'))
	return 0
}

// TestOSKeychain runs the store against the real OS keychain in a child
// process. Where a keychain exists, it must round-trip a key; where none
// does (a CI container without a Secret Service on D-Bus), the store must
// say so with an error matching ErrKeychain and agenttrust.ErrKeyStore, and
// the test logs why the round trip could not run.
func TestOSKeychain(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), osProbeEnv+"=1")
	out, err := cmd.Output()
	require.NoError(t, err, "probe process: %s", out)
	var res osProbeResult
	line := strings.TrimSpace(string(out))
	if i := strings.LastIndexByte(line, '\n'); i >= 0 {
		line = line[i+1:]
	}
	require.NoError(t, json.Unmarshal([]byte(line), &res), "probe output %q", out)
	if res.Available {
		t.Logf("OS keychain present: stored, signed with, and deleted a key")
		require.True(t, res.SignVerified, "round trip against the OS keychain failed: %+v", res)
		require.True(t, res.NotFoundAfterDelete, "round trip against the OS keychain failed: %+v", res)
		require.True(t, res.DeleteAgainOK, "round trip against the OS keychain failed: %+v", res)
		return
	}
	t.Logf("no usable OS keychain on this system, so the round trip did not run; Store reported: %s", res.StoreErr)
	const untyped = "keychain unavailable but the error is not typed as a keychain failure: %+v"
	require.True(t, res.IsKeychain, untyped, res)
	require.True(t, res.IsKeyStore, untyped, res)
	require.True(t, res.IsAgentTrust, untyped, res)
	require.False(t, res.IsValidation, untyped, res)
	require.False(t, res.IsNotFound, untyped, res)
	require.Contains(t, res.StoreErr, "OS keychain unavailable or failed", "error does not say the keychain is unavailable")
}
