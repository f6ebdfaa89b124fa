package transport

import (
	"context"
	"net/http"
)

// AttemptObserver watches the attempts of one Request. The root package
// implements it to call the user's observer; a nil AttemptObserver costs
// nothing.
type AttemptObserver interface {
	// AttemptStart is called before attempt n (1-based) is sent. header is
	// an empty map the observer may fill (a traceparent, say); it is merged
	// into the attempt's headers without replacing any header the transport
	// or the caller sets. The returned context is used for the attempt and
	// passed to AttemptDone.
	AttemptStart(ctx context.Context, n int, header http.Header) context.Context
	// AttemptDone is called after attempt n with its HTTP status (0 when no
	// response arrived) and its error.
	AttemptDone(ctx context.Context, n int, status int, err error)
}

// attempt sends attempt n of req through once, telling req.Observer.
func (t *Transport) attempt(ctx context.Context, req *Request, n int) (*Response, bool, error) {
	if req.Observer == nil {
		return t.once(ctx, req)
	}
	extra := make(http.Header, 2)
	actx := req.Observer.AttemptStart(ctx, n, extra)
	if actx == nil {
		actx = ctx
	}
	r := req
	if len(extra) > 0 {
		cp := *req
		cp.Header = make(http.Header, len(req.Header)+len(extra))
		for k, v := range extra {
			if !reservedHeader(k) {
				cp.Header[k] = v
			}
		}
		for k, v := range req.Header {
			cp.Header[k] = v
		}
		r = &cp
	}
	resp, written, err := t.once(actx, r)
	status := 0
	if resp != nil {
		status = resp.Status
	}
	req.Observer.AttemptDone(actx, n, status, err)
	return resp, written, err
}

// reservedHeader reports whether an observer may not set the header k: the
// transport's own headers and credentials.
func reservedHeader(k string) bool {
	switch http.CanonicalHeaderKey(k) {
	case "Accept", "User-Agent", "Content-Type", "Content-Length", "Host",
		"X-Api-Key", "Authorization", "Cookie", "Dpop", "Proxy-Authorization":
		return true
	}
	return false
}
