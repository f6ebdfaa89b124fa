module github.com/agenttrustid/agenttrust-go

go 1.22
