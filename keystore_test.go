package agenttrust

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestInMemoryKeyStore(t *testing.T) {
	ctx := context.Background()
	var ks InMemoryKeyStore // the zero value works
	_, err := ks.Sign(ctx, "a1", []byte("x"))
	require.ErrorIs(t, err, ErrKeyNotFound, "Sign(unknown) = %v", err)
	require.ErrorIs(t, err, ErrAgentTrust, "Sign(unknown) = %v", err)
	var ae *AgentTrustError
	_, err = ks.Sign(ctx, "a1", nil)
	require.ErrorAs(t, err, &ae, "Sign(unknown) = %#v", err)
	require.Equal(t, CodeKeyNotFound, ae.Code, "Sign(unknown) = %#v", err)
	require.Contains(t, ae.Error(), `"a1"`, "Sign(unknown) = %#v", err)
	require.NoError(t, ks.Delete(ctx, "a1"), "Delete(unknown) =")
	wantValidation(t, ks.Store(ctx, "a1", vecPubPEM), "Store(bad PEM)")
	wantValidation(t, ks.Store(ctx, "", vecPrivPEM), "Store(no agent)")
	require.Equal(t, 0, ks.Len(), "an invalid key was stored")
	require.NoError(t, ks.Store(ctx, "a1", vecPrivPEM))
	sig, err := ks.Sign(ctx, "a1", []byte(vecPoPMessage))
	require.NoError(t, err)
	assert.Equal(t, vecPoPSig, base64.RawURLEncoding.EncodeToString(sig), "store signature differs from the vector")
	body := strings.Split(vecPrivPEM, "\n")[1]
	seed, _ := hex.DecodeString(vecSeedHex)
	assertNoSecret(t, "InMemoryKeyStore", &ks, body, string(seed), string(vecKey(t)))
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("store", "ks", &ks)
	assert.Contains(t, buf.String(), `"keys":1`, "slog: %s", buf.String())
	require.NoError(t, ks.Delete(ctx, "a1"))
	_, err = ks.Sign(ctx, "a1", nil)
	assert.ErrorIs(t, err, ErrKeyNotFound, "Sign after Delete = %v", err)
}

func TestInMemoryKeyStoreConcurrent(t *testing.T) {
	ctx := context.Background()
	ks := NewInMemoryKeyStore()
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			id := []string{"a", "b"}[i%2]
			for j := 0; j < 50; j++ {
				_ = ks.Store(ctx, id, vecPrivPEM)
				if sig, err := ks.Sign(ctx, id, []byte("m")); err == nil {
					assert.True(t, ed25519.Verify(vecKey(t).Public().(ed25519.PublicKey), []byte("m"), sig), "bad signature")
				}
				_ = ks.Delete(ctx, id)
			}
		}(i)
	}
	wg.Wait()
}

func TestKeyStoreErrWrapping(t *testing.T) {
	foreign := errors.New("dbus: no secret service")
	err := keyStoreErr("signing", foreign)
	var ae *AgentTrustError
	require.ErrorAs(t, err, &ae, "foreign: %#v", err)
	assert.Equal(t, CodeKeyStore, ae.Code, "foreign: %#v", err)
	assert.Equal(t, 0, ae.Status, "foreign: %#v", err)
	assert.ErrorIs(t, err, ErrKeyStore, "foreign: %#v", err)
	assert.ErrorIs(t, err, foreign, "foreign: %#v", err)
	assert.NotErrorIs(t, err, ErrNetwork, "foreign: %#v", err)
	err = keyStoreErr("signing", NewKeyNotFoundError("a1"))
	assert.ErrorIs(t, err, ErrKeyNotFound, "not found: %#v", err)
	assert.ErrorIs(t, err, ErrKeyStore, "not found: %#v", err)
	require.ErrorAs(t, err, &ae, "not found: %#v", err)
	assert.Equal(t, CodeKeyNotFound, ae.Code, "not found: %#v", err)
	err = keyStoreErr("signing", validationErr("bad"))
	assert.ErrorIs(t, err, ErrValidation, "validation: %#v", err)
	assert.ErrorIs(t, err, ErrKeyStore, "validation: %#v", err)
}

// A nil *InMemoryKeyStore is a store that is missing: its methods return
// errors instead of panicking, and every API that takes a store refuses it
// before any I/O, as it refuses a nil KeyStore.
func TestNilInMemoryKeyStore(t *testing.T) {
	ctx := ctxT(t)
	var mem *InMemoryKeyStore
	wantValidation(t, mem.Store(ctx, "a1", vecPrivPEM), "Store")
	_, err := mem.Sign(ctx, "a1", []byte("x"))
	wantValidation(t, err, "Sign")
	assert.NoError(t, mem.Delete(ctx, "a1"), "Delete")
	assert.Equal(t, 0, mem.Len(), "Len")
	assert.Contains(t, mem.String(), "keys: 0", "String")

	var ks KeyStore = mem // not a nil interface
	srv := newRecServer(t, reply(201, `{"id":"a1"}`))
	c := newTestClient(t, srv.URL)
	_, err = NewDPoPKeyWithKeyStore(ks, "a1", vecPubPEM)
	wantValidation(t, err, "NewDPoPKeyWithKeyStore")
	_, err = c.NewAgentCredentials(AgentCredentialsParams{AgentID: "a1", KeyStore: ks, PublicKeyPEM: vecPubPEM})
	wantValidation(t, err, "NewAgentCredentials")
	_, err = c.WIMSE.IssueTokenWithProof(ctx, WIMSEProofParams{AgentID: "a1", KeyStore: ks})
	wantValidation(t, err, "IssueTokenWithProof")
	a, err := c.Agents.Create(ctx, AgentCreateParams{Name: "bot", KeyStore: ks})
	wantValidation(t, err, "Agents.Create")
	assert.Nil(t, a, "Agents.Create returned an agent it did not create")
	assert.Equal(t, 0, srv.count(), "%d requests sent with a nil store", srv.count())
}
