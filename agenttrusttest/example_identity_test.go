package agenttrusttest_test

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"strings"

	"github.com/agenttrustid/agenttrust-go/agenttrusttest"
)

// With proof of possession and sender-constrained tokens required, an agent
// proves it holds its key to obtain a WIMSE token, and a check without that
// token and a DPoP proof is refused. Here the client is plain net/http and
// crypto/ed25519.
func ExampleServer_SetSecuritySettings() {
	srv, err := agenttrusttest.NewServer()
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	srv.SetSecuritySettings(agenttrusttest.SecuritySettings{
		RequireProofOfPossession:       true,
		RequireSenderConstrainedTokens: true,
	})
	priv := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)) // use crypto/rand in real code
	der, _ := x509.MarshalPKIXPublicKey(priv.Public())
	agentID := srv.SeedAgent(agenttrusttest.AgentSeed{
		Name:      "billing-bot",
		PublicKey: string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})),
	})

	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	post := func(url, body string) (int, map[string]any) {
		req, _ := http.NewRequest("POST", url, strings.NewReader(body))
		req.Header.Set("X-API-Key", srv.APIKey())
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		res, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			panic(err)
		}
		defer res.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(res.Body).Decode(&out)
		return res.StatusCode, out
	}

	// Challenge, then sign pop-v1:<nonce>:<agent_id>:<aud>:<ts>.
	_, ch := post(srv.URL()+"/api/v1/agents/"+agentID+"/challenge", "")
	nonce := ch["nonce"].(string)
	now := srv.Now().Unix()
	msg := fmt.Sprintf("pop-v1:%s:%s::%d", nonce, agentID, now)
	sig := base64.RawURLEncoding.EncodeToString(ed25519.Sign(priv, []byte(msg)))
	status, tok := post(srv.URL()+"/api/v1/wimse/token",
		fmt.Sprintf(`{"agent_id": %q, "proof": {"nonce": %q, "ts": %d, "signature": %q}}`, agentID, nonce, now, sig))
	fmt.Println("token:", status, tok["trust_domain"])

	// A check with the API key alone is refused.
	status, _ = post(srv.AuthURL()+"/api/v1/agenttrust/check",
		fmt.Sprintf(`{"agent_id": %q, "session_id": "", "action_name": "read", "action_source": "api", "action_input_summary": ""}`, agentID))
	rejections := srv.IdentityRejections()
	fmt.Println("check:", status, rejections[len(rejections)-1].Reason)
	// Output:
	// token: 200 agenttrust.id
	// check: 401 missing_token
}
