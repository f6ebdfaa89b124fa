// Package obshook lets the module's other packages (tokenauth) report to a
// Client's Observer without widening the root package's public API: the
// root package installs the hooks here when it is initialised, and any
// package that imports it can then call them.
package obshook

import "context"

// CacheLookup reports a lookup of a cache named kind (an
// agenttrust.CacheKind value, such as "introspection") to the Observer of
// client, which must be an *agenttrust.Client (nil: nothing is reported).
// It is set by the root package's init and costs nothing when the client
// has no Observer.
var CacheLookup func(client any, ctx context.Context, kind string, hit bool)
