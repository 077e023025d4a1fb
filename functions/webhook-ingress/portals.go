package main

import "github.com/qinqing/qinqing/shared/portals"

// The portal configuration and the Standard Webhooks signature live in
// shared/portals (webhook-egress and open311 read the same PORTALS_FILE);
// these names keep the function's code and tests short.
type (
	// Portal is one portal of PORTALS_FILE.
	Portal = portals.Portal
	// Portals maps a portal's name to its configuration.
	Portals = portals.Set
	// AuthError is why a webhook failed verification (401).
	AuthError = portals.AuthError
)

// Standard Webhooks headers.
const (
	HeaderID        = portals.HeaderID
	HeaderTimestamp = portals.HeaderTimestamp
	HeaderSignature = portals.HeaderSignature
)

// Sign returns the v1 signature of a webhook for key (base64 of
// HMAC-SHA256 over "<id>.<timestamp>.<body>").
func Sign(key []byte, id, timestamp string, body []byte) string {
	return portals.Sign(key, id, timestamp, body)
}
