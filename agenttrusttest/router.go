package agenttrusttest

import (
	"net/url"
	"sort"
	"strings"
)

// api names the service a route belongs to; with split listeners each
// listener serves only its own routes.
type api uint8

const (
	apiGateway api = 1 << iota
	apiAuth
	apiAudit
	apiAll = apiGateway | apiAuth | apiAudit
)

// route is one endpoint: a method and a pattern such as
// "/api/v1/agents/{agent_id}".
type route struct {
	method   string
	pattern  string
	segs     []string
	api      api
	public   bool     // served without X-API-Key
	bodiless bool     // no request body allowed (GET, DELETE, bodiless POST/PUT)
	query    []string // allowed query parameters
	h        func(*call)
}

// key is the fault-injection name of the route, e.g. "GET /api/v1/agents/{agent_id}".
func (rt *route) key() string { return rt.method + " " + rt.pattern }

type router struct {
	routes []*route
}

func (rr *router) add(rt *route) {
	rt.segs = splitPath(rt.pattern)
	if rt.method == "GET" || rt.method == "DELETE" {
		rt.bodiless = true
	}
	rr.routes = append(rr.routes, rt)
}

func (rr *router) has(key string) bool {
	for _, rt := range rr.routes {
		if rt.key() == key {
			return true
		}
	}
	return false
}

func splitPath(p string) []string {
	return strings.Split(strings.TrimPrefix(p, "/"), "/")
}

func isParam(seg string) bool {
	return strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}")
}

// matchPath matches escaped path segments against the route, unescaping
// each segment on its own so that "%2F" stays inside one parameter.
func (rt *route) matchPath(segs []string) (map[string]string, bool) {
	if len(segs) != len(rt.segs) {
		return nil, false
	}
	var params map[string]string
	for i, ps := range rt.segs {
		if isParam(ps) {
			v, err := url.PathUnescape(segs[i])
			if err != nil || v == "" {
				return nil, false
			}
			if params == nil {
				params = make(map[string]string)
			}
			params[ps[1:len(ps)-1]] = v
			continue
		}
		if segs[i] != ps {
			return nil, false
		}
	}
	return params, true
}

// moreSpecific reports whether a beats b: at the first segment where one is
// literal and the other a parameter, the literal wins.
func moreSpecific(a, b *route) bool {
	for i := range a.segs {
		pa, pb := isParam(a.segs[i]), isParam(b.segs[i])
		if pa != pb {
			return !pa
		}
	}
	return false
}

// match finds the route for a request on a listener serving the given
// APIs. When the path exists but not for the method, it returns the allowed
// methods instead (for a 405); when nothing matches, both results are nil.
func (rr *router) match(served api, method, escapedPath string) (*route, map[string]string, []string) {
	segs := splitPath(escapedPath)
	var best *route
	var bestParams map[string]string
	allowed := map[string]bool{}
	for _, rt := range rr.routes {
		if rt.api&served == 0 {
			continue
		}
		params, ok := rt.matchPath(segs)
		if !ok {
			continue
		}
		allowed[rt.method] = true
		if rt.method != method {
			continue
		}
		if best == nil || moreSpecific(rt, best) {
			best, bestParams = rt, params
		}
	}
	if best != nil {
		return best, bestParams, nil
	}
	if len(allowed) == 0 {
		return nil, nil, nil
	}
	methods := make([]string, 0, len(allowed))
	for m := range allowed {
		methods = append(methods, m)
	}
	sort.Strings(methods)
	return nil, nil, methods
}
