package agenttrust

import (
	"strconv"
	"unicode/utf8"
)

// The keys of a check reply, as indexes into checkKeys. In decodeFast, a
// key's bit in the set of keys seen is 1 << its index.
const (
	keyAllowed = iota
	keyElevationRequired
	keyCheckID
	keyGuardTier
	keyReason
	keyApprovalID
	keyConfidence
	keyLatencyMs
)

// checkKeys are the keys of a check reply.
var checkKeys = [...]string{
	keyAllowed:           "allowed",
	keyElevationRequired: "elevation_required",
	keyCheckID:           "check_id",
	keyGuardTier:         "guard_tier",
	keyReason:            "reason",
	keyApprovalID:        "approval_id",
	keyConfidence:        "confidence",
	keyLatencyMs:         "latency_ms",
}

// checkKeyIndex returns the index of key in checkKeys, or -1.
func checkKeyIndex(key []byte) int {
	switch string(key) {
	case "allowed":
		return keyAllowed
	case "elevation_required":
		return keyElevationRequired
	case "check_id":
		return keyCheckID
	case "guard_tier":
		return keyGuardTier
	case "reason":
		return keyReason
	case "approval_id":
		return keyApprovalID
	case "confidence":
		return keyConfidence
	case "latency_ms":
		return keyLatencyMs
	}
	return -1
}

// decodeFast decodes the common shape of a check reply without reflection,
// in one pass: a JSON object whose known keys appear at most once, spelled
// exactly, each with a value of its type or null, and whose other keys hold
// scalars. Anything else (a nested value under another key, an escaped or
// non-ASCII key, a key that differs from a known one only in case, a
// duplicate, a value of the wrong type, invalid JSON) reports false, and
// encoding/json decides, with the same result as for every reply this
// accepts.
func (w *checkReplyWire) decodeFast(b []byte) bool {
	p := parser{b: b}
	r := &w.res
	strs := [...]*string{keyCheckID: &r.CheckID, keyGuardTier: &r.GuardTier, keyReason: &r.Reason, keyApprovalID: &r.ApprovalID}
	var seen uint8 // one bit per known key
	p.space()
	if !p.take('{') {
		return false
	}
	p.space()
	if !p.take('}') {
		for {
			key, ok := p.plainString()
			if !ok {
				return false
			}
			p.space()
			if !p.take(':') {
				return false
			}
			p.space()
			k := checkKeyIndex(key)
			if k >= 0 {
				if seen&(1<<k) != 0 {
					return false // a duplicate
				}
				seen |= 1 << k
			}
			switch k {
			case keyAllowed:
				switch p.literal() {
				case litTrue:
					w.Allowed = boolTrue
				case litFalse:
					w.Allowed = boolFalse
				case litNull:
				default:
					return false
				}
			case keyElevationRequired:
				switch p.literal() {
				case litTrue:
					r.ElevationRequired = true
				case litFalse, litNull:
				default:
					return false
				}
			case keyCheckID, keyGuardTier, keyReason, keyApprovalID:
				if !p.stringOrNull(strs[k]) {
					return false
				}
			case keyConfidence:
				if !numberOrNull(&p, &r.Confidence, parseFloat) {
					return false
				}
			case keyLatencyMs:
				if !numberOrNull(&p, &r.LatencyMs, parseInt) {
					return false
				}
			default:
				if !isASCII(key) || foldsToCheckKey(key) || !p.skipScalar() {
					return false
				}
			}
			p.space()
			if p.take('}') {
				break
			}
			if !p.take(',') {
				return false
			}
			p.space()
		}
	}
	p.space()
	return p.i == len(p.b)
}

// isASCII reports whether s is all ASCII; encoding/json folds some
// non-ASCII letters onto ASCII ones (the Kelvin sign onto k).
func isASCII(s []byte) bool {
	for _, c := range s {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// foldsToCheckKey reports whether key, ASCII, matches a check
// reply key ignoring case: encoding/json would decode it into that field.
func foldsToCheckKey(key []byte) bool {
	for _, k := range checkKeys {
		if len(k) != len(key) {
			continue
		}
		i := 0
		for i < len(k) && lower(key[i]) == k[i] {
			i++
		}
		if i == len(k) {
			return true
		}
	}
	return false
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// parser reads JSON tokens from b at i. Its methods leave i where they
// stopped and report false (or litNone) for anything they do not accept.
type parser struct {
	b []byte
	i int
}

func (p *parser) space() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *parser) take(c byte) bool {
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

type lit uint8

const (
	litNone lit = iota
	litTrue
	litFalse
	litNull
)

// literal reads true, false or null; at anything else it reads nothing.
func (p *parser) literal() lit {
	rest := p.b[p.i:]
	switch {
	case len(rest) >= 4 && string(rest[:4]) == "true":
		p.i += 4
		return litTrue
	case len(rest) >= 5 && string(rest[:5]) == "false":
		p.i += 5
		return litFalse
	case len(rest) >= 4 && string(rest[:4]) == "null":
		p.i += 4
		return litNull
	}
	return litNone
}

// plainString reads a string without escapes or control characters and
// returns its content; non-ASCII content must be valid UTF-8.
func (p *parser) plainString() ([]byte, bool) {
	if !p.take('"') {
		return nil, false
	}
	start, ascii := p.i, true
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			s := p.b[start:p.i]
			p.i++
			return s, ascii || utf8.Valid(s)
		case c == '\\' || c < 0x20:
			return nil, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
		p.i++
	}
	return nil, false
}

// stringOrNull reads a plain string into *dst, or null (leaving *dst).
func (p *parser) stringOrNull(dst *string) bool {
	if p.literal() == litNull {
		return true
	}
	s, ok := p.plainString()
	if ok {
		*dst = string(s)
	}
	return ok
}

// numberOrNull reads a number into a new *dst, converted by parse, or null
// (leaving *dst).
func numberOrNull[T any](p *parser, dst **T, parse func([]byte) (T, bool)) bool {
	if p.literal() == litNull {
		return true
	}
	num, ok := p.number()
	if !ok {
		return false
	}
	v, ok := parse(num)
	if ok {
		*dst = &v
	}
	return ok
}

// parseFloat parses a JSON number into a float64 as encoding/json does.
func parseFloat(num []byte) (float64, bool) {
	f, err := strconv.ParseFloat(string(num), 64)
	return f, err == nil
}

// number reads a JSON number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (p *parser) number() ([]byte, bool) {
	start := p.i
	p.take('-')
	switch {
	case p.take('0'):
	case p.i < len(p.b) && '1' <= p.b[p.i] && p.b[p.i] <= '9':
		p.digits()
	default:
		return nil, false
	}
	if p.take('.') && !p.digits() {
		return nil, false
	}
	if p.take('e') || p.take('E') {
		if !p.take('+') {
			p.take('-')
		}
		if !p.digits() {
			return nil, false
		}
	}
	return p.b[start:p.i], true
}

// digits reads one or more digits.
func (p *parser) digits() bool {
	start := p.i
	for p.i < len(p.b) && '0' <= p.b[p.i] && p.b[p.i] <= '9' {
		p.i++
	}
	return p.i > start
}

// skipScalar reads and validates a string (escapes included), a number or a
// literal. An object or an array is not read.
func (p *parser) skipScalar() bool {
	if p.i >= len(p.b) {
		return false
	}
	switch c := p.b[p.i]; {
	case c == '"':
		return p.skipString()
	case c == '-' || ('0' <= c && c <= '9'):
		_, ok := p.number()
		return ok
	}
	return p.literal() != litNone
}

// skipString reads a string, validating its escapes as encoding/json does
// (invalid UTF-8 is not an error there).
func (p *parser) skipString() bool {
	p.i++ // the opening quote
	for p.i < len(p.b) {
		c := p.b[p.i]
		p.i++
		switch {
		case c == '"':
			return true
		case c < 0x20:
			return false
		case c == '\\':
			if p.i >= len(p.b) {
				return false
			}
			e := p.b[p.i]
			p.i++
			switch e {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if p.i+4 > len(p.b) {
					return false
				}
				for _, h := range p.b[p.i : p.i+4] {
					if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
						return false
					}
				}
				p.i += 4
			default:
				return false
			}
		}
	}
	return false
}

// parseInt parses a JSON integer (no fraction or exponent) that fits an
// int, as encoding/json accepts into an int field.
func parseInt(num []byte) (int, bool) {
	neg := num[0] == '-'
	if neg {
		num = num[1:]
	}
	var n uint64
	for _, c := range num {
		if c < '0' || c > '9' {
			return 0, false // a fraction or an exponent
		}
		d := uint64(c - '0')
		if n > (1<<63-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	switch {
	case neg && n <= 1<<63:
		v := -int64(n)
		if int64(int(v)) != v {
			return 0, false
		}
		return int(v), true
	case !neg && n < 1<<63:
		if int64(int(n)) != int64(n) {
			return 0, false
		}
		return int(n), true
	}
	return 0, false
}
