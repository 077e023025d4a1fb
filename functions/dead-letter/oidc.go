package main

import (
	"context"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/qinqing/qinqing/shared/event"
	"github.com/qinqing/qinqing/shared/runtime"
	"github.com/qinqing/qinqing/shared/telemetry"
)

// Sender authentication of the dead-letter intake, with Knative Eventing's
// OIDC (the authentication-oidc feature): a Trigger whose deadLetterSink
// names an audience sends each dead letter with
// "Authorization: Bearer <JWT>", a token of the Trigger's OIDC service
// account issued by the cluster for that audience. A NetworkPolicy cannot
// tell the broker from any other caller of the Knative route (both arrive
// through the activator), the token can. With DEADLETTER_OIDC_ISSUER set,
// POST / admits only requests whose token
//
//   - is signed (RS256 or ES256) by a key of the issuer's JWKS,
//   - names the issuer (iss) and DEADLETTER_OIDC_AUDIENCE (aud),
//   - is within its lifetime (exp, nbf; a minute of clock skew allowed),
//   - has a subject (sub) DEADLETTER_OIDC_SUBJECTS allows (a list of
//     subjects, a trailing * matching any rest, e.g.
//     system:serviceaccount:qinqing:*);
//
// anything else is 401 (403 for a valid token of another subject) and
// nothing is stored. The JWKS comes from DEADLETTER_OIDC_JWKS_URL, or the
// issuer's discovery document; in a cluster it is the API server's
// /openid/v1/jwks, read with the pod's service account token
// (DEADLETTER_OIDC_TOKEN_FILE) and CA (DEADLETTER_OIDC_CA_FILE). Keys are
// cached and fetched again, at most every 30 s, when a token names a key
// not in the cache (the issuer rotated). A JWKS that cannot be fetched is
// a 503: the sender retries.

// OIDCConfig is the sender authentication part of the configuration.
type OIDCConfig struct {
	Issuer    string `envconfig:"DEADLETTER_OIDC_ISSUER"`
	Audience  string `envconfig:"DEADLETTER_OIDC_AUDIENCE"`
	Subjects  string `envconfig:"DEADLETTER_OIDC_SUBJECTS"`
	JWKSURL   string `envconfig:"DEADLETTER_OIDC_JWKS_URL"`
	TokenFile string `envconfig:"DEADLETTER_OIDC_TOKEN_FILE"`
	CAFile    string `envconfig:"DEADLETTER_OIDC_CA_FILE"`
}

// clockSkew is how far exp and nbf may be off.
const clockSkew = time.Minute

// refetchEvery bounds how often an unknown key id fetches the JWKS again.
const refetchEvery = 30 * time.Second

// verifier checks the bearer tokens of dead-letter senders.
type verifier struct {
	issuer, audience string
	subjects         []string
	jwksURL          string
	tokenFile        string
	client           *http.Client
	now              func() time.Time

	mu      sync.Mutex
	keys    map[string]crypto.PublicKey // by kid ("" for a key without one)
	fetched time.Time
}

// newVerifier checks c; nil (and no error) when the issuer is unset.
func newVerifier(c OIDCConfig) (*verifier, error) {
	if strings.TrimSpace(c.Issuer) == "" {
		if c.Audience != "" || c.Subjects != "" || c.JWKSURL != "" {
			return nil, errors.New("DEADLETTER_OIDC_AUDIENCE, _SUBJECTS and _JWKS_URL need DEADLETTER_OIDC_ISSUER")
		}
		return nil, nil
	}
	v := &verifier{issuer: strings.TrimSpace(c.Issuer), audience: strings.TrimSpace(c.Audience),
		jwksURL: strings.TrimSpace(c.JWKSURL), tokenFile: c.TokenFile, now: time.Now}
	if u, err := url.Parse(v.issuer); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("DEADLETTER_OIDC_ISSUER %q: not an http(s) URL", v.issuer)
	}
	if v.audience == "" {
		return nil, errors.New("DEADLETTER_OIDC_AUDIENCE is required with DEADLETTER_OIDC_ISSUER: the audience the Triggers' deadLetterSink names")
	}
	for _, s := range strings.Split(c.Subjects, ",") {
		if s = strings.TrimSpace(s); s != "" {
			v.subjects = append(v.subjects, s)
		}
	}
	if len(v.subjects) == 0 {
		return nil, errors.New("DEADLETTER_OIDC_SUBJECTS is required with DEADLETTER_OIDC_ISSUER, e.g. system:serviceaccount:<namespace>:*")
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("DEADLETTER_OIDC_CA_FILE: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("DEADLETTER_OIDC_CA_FILE: no PEM certificate in %s", c.CAFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	v.client = &http.Client{Transport: tr, Timeout: 10 * time.Second}
	return v, nil
}

// errUnavailable marks a failure to fetch the keys (answered 503).
var errUnavailable = errors.New("the issuer's keys cannot be fetched")

// check verifies the request's bearer token: nil, or a coded error
// (EUNAUTHORIZED, EFORBIDDEN) or one wrapping errUnavailable.
func (v *verifier) check(ctx context.Context, r *http.Request) error {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return event.Errorf(event.EUNAUTHORIZED, "", "dead letters need Authorization: Bearer <OIDC token of the sending Trigger>")
	}
	claims, err := v.verify(ctx, strings.TrimSpace(token))
	if err != nil {
		return err
	}
	for _, s := range v.subjects {
		if s == claims.Subject || (strings.HasSuffix(s, "*") && strings.HasPrefix(claims.Subject, strings.TrimSuffix(s, "*"))) {
			return nil
		}
	}
	return event.Errorf(event.EFORBIDDEN, "", "the token's subject %q may not send dead letters", claims.Subject)
}

type jwtHeader struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
}

type jwtClaims struct {
	Issuer    string          `json:"iss"`
	Subject   string          `json:"sub"`
	Audience  json.RawMessage `json:"aud"`
	Expires   *float64        `json:"exp"`
	NotBefore *float64        `json:"nbf"`
}

func unauthorized(format string, args ...any) error {
	return event.Errorf(event.EUNAUTHORIZED, "", "bearer token: "+format, args...)
}

// verify checks the token's signature and its iss, aud, exp and nbf.
func (v *verifier) verify(ctx context.Context, token string) (*jwtClaims, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, unauthorized("not a JWT")
	}
	var h jwtHeader
	if err := decodeSegment(parts[0], &h); err != nil {
		return nil, unauthorized("header: %v", err)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return nil, unauthorized("signature is not base64url")
	}
	key, err := v.key(ctx, h.Kid)
	if err != nil {
		return nil, err
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	switch k := key.(type) {
	case *rsa.PublicKey:
		if h.Alg != "RS256" || rsa.VerifyPKCS1v15(k, crypto.SHA256, digest[:], sig) != nil {
			return nil, unauthorized("signature does not verify")
		}
	case *ecdsa.PublicKey:
		if h.Alg != "ES256" || len(sig) != 64 ||
			!ecdsa.Verify(k, digest[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
			return nil, unauthorized("signature does not verify")
		}
	default:
		return nil, unauthorized("signature does not verify")
	}
	var c jwtClaims
	if err := decodeSegment(parts[1], &c); err != nil {
		return nil, unauthorized("claims: %v", err)
	}
	if c.Issuer != v.issuer {
		return nil, unauthorized("issuer %q is not %s", c.Issuer, v.issuer)
	}
	if !audienceHas(c.Audience, v.audience) {
		return nil, unauthorized("not issued for the audience %s", v.audience)
	}
	now := v.now()
	if c.Expires == nil || now.After(time.Unix(int64(*c.Expires), 0).Add(clockSkew)) {
		return nil, unauthorized("expired or without exp")
	}
	if c.NotBefore != nil && now.Add(clockSkew).Before(time.Unix(int64(*c.NotBefore), 0)) {
		return nil, unauthorized("not valid yet")
	}
	if c.Subject == "" {
		return nil, unauthorized("no subject")
	}
	return &c, nil
}

func decodeSegment(s string, v any) error {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return errors.New("not base64url")
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return errors.New("not JSON")
	}
	return nil
}

// audienceHas reports whether aud (a string or an array of strings)
// contains want.
func audienceHas(aud json.RawMessage, want string) bool {
	var one string
	if json.Unmarshal(aud, &one) == nil {
		return one == want
	}
	var many []string
	if json.Unmarshal(aud, &many) == nil {
		for _, a := range many {
			if a == want {
				return true
			}
		}
	}
	return false
}

// key returns the issuer's key kid, fetching the JWKS when it is not
// cached (at most every refetchEvery).
func (v *verifier) key(ctx context.Context, kid string) (crypto.PublicKey, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if k, ok := v.keys[kid]; ok {
		return k, nil
	}
	if v.keys != nil && v.now().Sub(v.fetched) < refetchEvery {
		return nil, unauthorized("no key %q in the issuer's JWKS", kid)
	}
	keys, err := v.fetch(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errUnavailable, err)
	}
	v.keys, v.fetched = keys, v.now()
	if k, ok := keys[kid]; ok {
		return k, nil
	}
	return nil, unauthorized("no key %q in the issuer's JWKS", kid)
}

// get reads a JSON document, with the service account token when one is
// configured.
func (v *verifier) get(ctx context.Context, u string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	if v.tokenFile != "" {
		tok, err := os.ReadFile(v.tokenFile) // read each time: kubelet rotates it
		if err != nil {
			return fmt.Errorf("DEADLETTER_OIDC_TOKEN_FILE: %w", err)
		}
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	}
	resp, err := v.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(out)
}

type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	N   string `json:"n"`
	E   string `json:"e"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// fetch reads the JWKS (through discovery when no URL is configured).
func (v *verifier) fetch(ctx context.Context) (map[string]crypto.PublicKey, error) {
	u := v.jwksURL
	if u == "" {
		var disc struct {
			JWKSURI string `json:"jwks_uri"`
		}
		if err := v.get(ctx, strings.TrimSuffix(v.issuer, "/")+"/.well-known/openid-configuration", &disc); err != nil {
			return nil, err
		}
		if disc.JWKSURI == "" {
			return nil, errors.New("the issuer's discovery document has no jwks_uri")
		}
		u = disc.JWKSURI
	}
	var set struct {
		Keys []jwk `json:"keys"`
	}
	if err := v.get(ctx, u, &set); err != nil {
		return nil, err
	}
	keys := map[string]crypto.PublicKey{}
	for _, k := range set.Keys {
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		if pub, err := k.public(); err == nil {
			keys[k.Kid] = pub
		}
	}
	return keys, nil
}

func (k jwk) public() (crypto.PublicKey, error) {
	b := func(s string) (*big.Int, error) {
		raw, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil || len(raw) == 0 {
			return nil, errors.New("bad number")
		}
		return new(big.Int).SetBytes(raw), nil
	}
	switch k.Kty {
	case "RSA":
		n, err := b(k.N)
		if err != nil {
			return nil, err
		}
		e, err := b(k.E)
		if err != nil || !e.IsInt64() || e.Int64() < 3 || n.BitLen() < 2048 {
			return nil, errors.New("unusable RSA key")
		}
		return &rsa.PublicKey{N: n, E: int(e.Int64())}, nil
	case "EC":
		if k.Crv != "P-256" {
			return nil, errors.New("unsupported curve")
		}
		x, err := b(k.X)
		if err != nil {
			return nil, err
		}
		y, err := b(k.Y)
		if err != nil {
			return nil, err
		}
		if x.BitLen() > 256 || y.BitLen() > 256 {
			return nil, errors.New("point not on the curve")
		}
		raw := make([]byte, 65)
		raw[0] = 4 // uncompressed point
		x.FillBytes(raw[1:33])
		y.FillBytes(raw[33:])
		if _, err := ecdh.P256().NewPublicKey(raw); err != nil {
			return nil, errors.New("point not on the curve")
		}
		return &ecdsa.PublicKey{Curve: elliptic.P256(), X: x, Y: y}, nil
	}
	return nil, errors.New("unsupported key type")
}

// admit wraps the dead-letter intake: without a verifier every request
// passes; with one, a request without a valid token of an allowed
// subject is answered 401 or 403 (503 when the keys cannot be fetched)
// before its body is read, and nothing is stored.
func (v *verifier) admit(log *zap.SugaredLogger, next http.HandlerFunc) http.HandlerFunc {
	if v == nil {
		return next
	}
	return func(w http.ResponseWriter, r *http.Request) {
		err := v.check(r.Context(), r)
		if err == nil {
			next(w, r)
			return
		}
		if errors.Is(err, errUnavailable) {
			err = event.Unavailable(err, "the senders of dead letters cannot be verified now (the issuer's keys cannot be fetched); retry later")
		} else if event.ErrorCode(err) == event.EUNAUTHORIZED {
			w.Header().Set("WWW-Authenticate", `Bearer realm="qinqing-dead-letter"`)
		}
		status := runtime.WriteError(w, err, nil)
		telemetry.Current().Instruments().Event(r.Context(), name, "", event.ErrorCode(err), status, 0)
		log.Warnw("dead letter refused", "status", status, "error", err.Error(), "remote", r.RemoteAddr)
	}
}
