package portals

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Standard Webhooks (standardwebhooks.com) headers and limits.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"

	// Tolerance is how far webhook-timestamp may be from our clock, in
	// either direction; older (or future) webhooks are refused as replays.
	Tolerance = 5 * time.Minute

	signatureVersion = "v1"
)

// AuthError is why a webhook failed verification (401). Its message tells
// the portal what to fix and never contains a secret or the expected
// signature.
type AuthError struct{ Message string }

func (e *AuthError) Error() string { return e.Message }

func authErrorf(format string, args ...any) error {
	return &AuthError{Message: fmt.Sprintf(format, args...)}
}

// ParseSignatures returns the v1 signatures of a webhook-signature header:
// space-separated "<version>,<base64 signature>" entries. Entries of other
// versions (e.g. the asymmetric "v1a") and undecodable entries are skipped,
// so a portal may list schemes we do not know; the error says why none is
// usable when no v1 signature remains.
func ParseSignatures(header string) ([][]byte, error) {
	entries := strings.Fields(header)
	if len(entries) == 0 {
		return nil, fmt.Errorf("%s header is missing", HeaderSignature)
	}
	var sigs [][]byte
	for _, e := range entries {
		version, enc, ok := strings.Cut(e, ",")
		if !ok || version != signatureVersion {
			continue
		}
		sig, err := base64.StdEncoding.DecodeString(enc)
		if err != nil || len(sig) == 0 {
			continue
		}
		sigs = append(sigs, sig)
	}
	if len(sigs) == 0 {
		return nil, fmt.Errorf("%s header has no usable signature: want space-separated \"v1,<base64 HMAC-SHA256>\" entries", HeaderSignature)
	}
	return sigs, nil
}

// Sign returns the v1 signature of a webhook for key: base64 of
// HMAC-SHA256 over "<id>.<timestamp>.<body>".
func Sign(key []byte, id, timestamp string, body []byte) string {
	return base64.StdEncoding.EncodeToString(mac(key, id, timestamp, body))
}

func mac(key []byte, id, timestamp string, body []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(id))
	h.Write([]byte{'.'})
	h.Write([]byte(timestamp))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// ParseTimestamp reads webhook-timestamp (Unix seconds) and checks it is
// within Tolerance of now.
func ParseTimestamp(v string, now time.Time) (time.Time, error) {
	if v == "" {
		return time.Time{}, authErrorf("%s header is missing: send the Unix time in seconds at which you signed", HeaderTimestamp)
	}
	secs, err := strconv.ParseInt(v, 10, 64)
	if err != nil || secs <= 0 {
		return time.Time{}, authErrorf("%s header must be the Unix time in whole seconds (e.g. %d)", HeaderTimestamp, now.Unix())
	}
	ts := time.Unix(secs, 0)
	if d := now.Sub(ts); d > Tolerance || d < -Tolerance {
		return time.Time{}, authErrorf("%s %s is %s away from our clock (%d); at most %s is allowed: sign with the current time and check your clock",
			HeaderTimestamp, v, d.Abs().Truncate(time.Second), now.Unix(), Tolerance)
	}
	return ts, nil
}

// Verify checks a webhook against the portal's keys: the headers are
// present, the timestamp is fresh, and at least one listed v1 signature is
// the HMAC of "<id>.<timestamp>.<body>" under at least one key (several
// keys during a rotation). Comparisons are constant-time. It returns the
// timestamp, which becomes the CloudEvent's time.
func (p *Portal) Verify(id, timestamp, signature string, body []byte, now time.Time) (time.Time, error) {
	if id == "" {
		return time.Time{}, authErrorf("%s header is missing: send a unique id per message (the same id on retries)", HeaderID)
	}
	ts, err := ParseTimestamp(timestamp, now)
	if err != nil {
		return time.Time{}, err
	}
	sigs, err := ParseSignatures(signature)
	if err != nil {
		return time.Time{}, &AuthError{Message: err.Error()}
	}
	match := false
	for _, key := range p.keys {
		want := mac(key, id, timestamp, body)
		for _, sig := range sigs {
			if hmac.Equal(sig, want) {
				match = true
			}
		}
	}
	if !match {
		return time.Time{}, authErrorf("no signature in %s matches: sign the exact bytes \"<%s>.<%s>.<request body>\" with HMAC-SHA256, keyed with the base64-decoded part of your whsec_ secret after the prefix, and send \"v1,<base64 of the MAC>\"",
			HeaderSignature, HeaderID, HeaderTimestamp)
	}
	return ts, nil
}
