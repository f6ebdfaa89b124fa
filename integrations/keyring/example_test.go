package agenttrustkeyring_test

import (
	"context"
	"fmt"
	"log"

	agenttrust "github.com/agenttrustid/agenttrust-go"
	agenttrustkeyring "github.com/agenttrustid/agenttrust-go/integrations/keyring"
)

// Register an agent whose private key goes straight into the OS keychain,
// where the Python SDK's KeychainKeyStore finds it too, and sign with it
// later without the key passing through application code.
func ExampleNew() {
	ctx := context.Background()
	client, err := agenttrust.New(agenttrust.WithAPIKey("sk_live_..."))
	if err != nil {
		log.Fatal(err)
	}
	keys := agenttrustkeyring.New() // service "agenttrust-id"
	agent, err := client.Agents.Create(ctx, agenttrust.AgentCreateParams{Name: "billing-bot", KeyStore: keys})
	if err != nil {
		log.Fatal(err)
	}
	sig, err := keys.Sign(ctx, agent.ID, []byte("hello"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(sig))
}
