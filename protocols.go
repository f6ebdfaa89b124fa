package agenttrust

// initProtocols wires the protocol sub-clients (agent cards, A2A, MCP,
// delegations, federation, SIEM streaming).
func (c *Client) initProtocols() {}
