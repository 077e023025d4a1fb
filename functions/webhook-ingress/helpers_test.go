package main

import "github.com/qinqing/qinqing/shared/portals"

// decodeSecret is the HMAC key of a whsec_ secret, for signing test webhooks.
func decodeSecret(s string) ([]byte, error) { return portals.DecodeSecret(s) }
