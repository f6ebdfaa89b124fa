// Package uuidv4 generates random UUIDs (version 4, RFC 9562) for the
// session ids of the guard and the message ids of A2A, so that the core
// module needs no UUID dependency.
package uuidv4

import (
	"crypto/rand"
	"encoding/hex"
)

// New returns a random UUID version 4 from crypto/rand in canonical
// lowercase form, e.g. "0b0f7c1e-3a9d-4c1b-9a57-2f7d0b3c9e11". Like
// crypto/rand itself since Go 1.24, it panics if the system's random source
// fails, which no caller can recover from sensibly.
func New() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("agenttrust: crypto/rand failed: " + err.Error())
	}
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // variant 10
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:], b[10:])
	return string(out[:])
}
