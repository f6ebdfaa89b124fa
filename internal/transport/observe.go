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

// attempt sends attempt n of req through once, with extra (the headers of
// req.BeforeAttempt, may be nil), telling req.Observer. The observer's
// headers are added last and only where nobody else set one: they never
// replace a header of the transport, of the call (req.Header) or of
// BeforeAttempt (Authorization, DPoP), nor any credential header.
func (t *Transport) attempt(ctx context.Context, req *Request, n int, extra http.Header) (*Response, bool, error) {
	if req.Observer == nil {
		return t.once(ctx, req, extra)
	}
	oh := make(http.Header, 2)
	actx := req.Observer.AttemptStart(ctx, n, oh)
	if actx == nil {
		actx = ctx
	}
	for k, v := range oh {
		ck := http.CanonicalHeaderKey(k)
		if reservedHeader(ck) || hasHeader(req.Header, k, ck) || hasHeader(extra, k, ck) {
			continue
		}
		if extra == nil {
			extra = make(http.Header, len(oh)+8) // the request header: see once
		}
		extra[ck] = v
	}
	resp, written, err := t.once(actx, req, extra)
	status := 0
	if resp != nil {
		status = resp.Status
	}
	req.Observer.AttemptDone(actx, n, status, err)
	return resp, written, err
}

// hasHeader reports whether h holds the header k, as given or canonical ck.
func hasHeader(h http.Header, k, ck string) bool {
	if h == nil {
		return false
	}
	_, ok := h[k]
	if !ok {
		_, ok = h[ck]
	}
	return ok
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
