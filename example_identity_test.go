package agenttrust_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"log"
	"strings"

	agenttrust "github.com/agenttrustid/agenttrust-go"
	"github.com/agenttrustid/agenttrust-go/agenttrusttest"
)

// An agent key pair is generated locally; the public half is registered,
// the private half signs.
func ExampleGenerateAgentKey() {
	kp, err := agenttrust.GenerateAgentKey()
	if err != nil {
		log.Fatal(err)
	}
	sig, err := agenttrust.SignWithPrivateKeyPEM(kp.PrivateKeyPEM, []byte("hello"))
	if err != nil {
		log.Fatal(err)
	}
	pub, err := agenttrust.ParsePublicKeyPEM(kp.PublicKeyPEM)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(strings.SplitN(kp.PublicKeyPEM, "\n", 2)[0])
	fmt.Println("signature verifies:", ed25519.Verify(pub, []byte("hello"), sig))
	// Printing never shows the private key.
	fmt.Println(strings.Contains(fmt.Sprint(kp), "PRIVATE"), strings.Contains(fmt.Sprint(kp), "[redacted]"))
	// Output:
	// -----BEGIN PUBLIC KEY-----
	// signature verifies: true
	// false true
}

// A key store keeps private keys out of application code; signing for an
// agent it does not hold is a typed error.
func ExampleInMemoryKeyStore() {
	ctx := context.Background()
	ks := agenttrust.NewInMemoryKeyStore()
	kp, err := agenttrust.GenerateAgentKey()
	if err != nil {
		log.Fatal(err)
	}
	if err := ks.Store(ctx, "agent-1", kp.PrivateKeyPEM); err != nil {
		log.Fatal(err)
	}
	sig, err := ks.Sign(ctx, "agent-1", []byte("data"))
	fmt.Println(len(sig), err)
	_, err = ks.Sign(ctx, "agent-2", []byte("data"))
	fmt.Println(errors.Is(err, agenttrust.ErrKeyNotFound))
	fmt.Println(ks)
	// Output:
	// 64 <nil>
	// true
	// agenttrust.InMemoryKeyStore{keys: 1}
}

// A DPoP proof binds one request (method and URL) to the agent's key.
func ExampleNewDPoPKey() {
	kp, err := agenttrust.GenerateAgentKey()
	if err != nil {
		log.Fatal(err)
	}
	key, err := agenttrust.NewDPoPKey(kp.PrivateKeyPEM)
	if err != nil {
		log.Fatal(err)
	}
	proof, err := key.Proof(context.Background(), "POST", "https://auth.example.com/api/v1/agenttrust/check?debug=1", "")
	if err != nil {
		log.Fatal(err)
	}
	parts := strings.Split(proof, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	fmt.Println(len(parts), strings.Contains(string(payload), `"htu":"https://auth.example.com/api/v1/agenttrust/check"`))
	// Output:
	// 3 true
}

// Agent credentials make every Guardian check sender-constrained: a WIMSE
// token obtained with a proof of possession, and a fresh DPoP proof per
// request. Here the fake gateway requires both.
func ExampleClient_NewAgentCredentials() {
	srv, err := agenttrusttest.NewServer()
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	srv.SetSecuritySettings(agenttrusttest.SecuritySettings{RequireProofOfPossession: true, RequireSenderConstrainedTokens: true})

	client, err := agenttrust.New(agenttrust.WithBaseURL(srv.URL()), agenttrust.WithAPIKey(srv.APIKey()))
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	keys := agenttrust.NewInMemoryKeyStore()
	// The key pair is generated locally and the private key goes straight
	// into the key store.
	agent, err := client.Agents.Create(ctx, agenttrust.AgentCreateParams{Name: "billing-bot", KeyStore: keys})
	if err != nil {
		log.Fatal(err)
	}
	creds, err := client.NewAgentCredentials(agenttrust.AgentCredentialsParams{
		AgentID: agent.ID, KeyStore: keys, PublicKeyPEM: agent.PublicKey,
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := client.UseAgentCredentials(creds); err != nil {
		log.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		res, err := client.Actions.Check(ctx, agenttrust.ActionCheckParams{AgentID: agent.ID, ToolName: "read_invoice"})
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("allowed:", res.Allowed)
	}
	fmt.Println("WIMSE tokens issued:", len(srv.WIMSETokens()))
	fmt.Println("DPoP proofs accepted:", len(srv.DPoPProofs()))
	// Output:
	// allowed: true
	// allowed: true
	// WIMSE tokens issued: 1
	// DPoP proofs accepted: 2
}
