package agenttrust

import "log/slog"

// Logger returns the logger the client writes to: the one given with
// WithLogger, or a logger that discards everything. Packages built on a
// Client, such as tokenauth, log there unless told otherwise.
func (c *Client) Logger() *slog.Logger { return c.logger }
