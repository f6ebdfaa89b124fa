package agenttrusttest_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/agenttrustid/agenttrust-go/agenttrusttest"
)

// A test starts the fake, seeds an agent and a policy, points the client
// under test at it and inspects what arrived. Here the client is plain
// net/http.
func ExampleNewServer() {
	srv, err := agenttrusttest.NewServer()
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	agentID := srv.CreateAgent("billing-bot", "read_invoices")
	srv.DenyTool("delete_file", "destructive tool")

	body := fmt.Sprintf(`{"agent_id": %q, "session_id": "", "action_name": "delete_file", "action_source": "api", "action_input_summary": ""}`, agentID)
	req, _ := http.NewRequest("POST", srv.AuthURL()+"/api/v1/agenttrust/check", strings.NewReader(body))
	req.Header.Set("X-API-Key", srv.APIKey())
	req.Header.Set("Content-Type", "application/json")
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	res, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		panic(err)
	}
	defer res.Body.Close()
	var result struct {
		Allowed bool   `json:"allowed"`
		Reason  string `json:"reason"`
	}
	_ = json.NewDecoder(res.Body).Decode(&result)

	fmt.Println(res.StatusCode, result.Allowed, result.Reason)
	fmt.Println(srv.Checks()[0].ActionName)
	// Output:
	// 200 false destructive tool
	// delete_file
}
