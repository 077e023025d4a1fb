package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/qinqing/qinqing/shared/postgres/pgtest"
	"github.com/qinqing/qinqing/shared/runtime/functest"
)

// issuer is an OIDC issuer for the tests: a discovery document and a JWKS
// whose keys the test may change (rotation).
type issuer struct {
	srv  *httptest.Server
	mu   sync.Mutex
	keys []map[string]string
	gets int
}

func newIssuer(t *testing.T) *issuer {
	is := &issuer{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": is.srv.URL, "jwks_uri": is.srv.URL + "/openid/v1/jwks"})
	})
	mux.HandleFunc("GET /openid/v1/jwks", func(w http.ResponseWriter, r *http.Request) {
		is.mu.Lock()
		defer is.mu.Unlock()
		is.gets++
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": is.keys})
	})
	is.srv = httptest.NewServer(mux)
	t.Cleanup(is.srv.Close)
	return is
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func (is *issuer) addRSA(kid string, k *rsa.PublicKey) {
	is.mu.Lock()
	defer is.mu.Unlock()
	is.keys = append(is.keys, map[string]string{"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
		"n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes())})
}

func (is *issuer) addEC(kid string, k *ecdsa.PublicKey) {
	is.mu.Lock()
	defer is.mu.Unlock()
	x, y := make([]byte, 32), make([]byte, 32)
	k.X.FillBytes(x)
	k.Y.FillBytes(y)
	is.keys = append(is.keys, map[string]string{"kty": "EC", "kid": kid, "crv": "P-256", "x": b64(x), "y": b64(y)})
}

// sign makes a JWT with header alg/kid and the claims, signed by key
// (an *rsa.PrivateKey or *ecdsa.PrivateKey).
func sign(t *testing.T, alg, kid string, key crypto.Signer, claims map[string]any) string {
	t.Helper()
	h, _ := json.Marshal(map[string]string{"alg": alg, "kid": kid, "typ": "JWT"})
	c, _ := json.Marshal(claims)
	input := b64(h) + "." + b64(c)
	digest := sha256.Sum256([]byte(input))
	var sig []byte
	switch k := key.(type) {
	case *rsa.PrivateKey:
		s, err := rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, digest[:])
		if err != nil {
			t.Fatal(err)
		}
		sig = s
	case *ecdsa.PrivateKey:
		r, s, err := ecdsa.Sign(rand.Reader, k, digest[:])
		if err != nil {
			t.Fatal(err)
		}
		sig = make([]byte, 64)
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
	}
	return input + "." + b64(sig)
}

// unsigned is a JWT with alg none and no signature.
func unsigned(claims map[string]any) string {
	h, _ := json.Marshal(map[string]string{"alg": "none", "kid": "r1"})
	c, _ := json.Marshal(claims)
	return b64(h) + "." + b64(c) + "."
}

// sendWith posts ev in binary mode with the Authorization header auth ("" none).
func sendWith(t *testing.T, fn *functest.Instance, ev cloudevents.Event, auth string) *functest.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, fn.URL+"/", nil)
	if err := cehttp.WriteRequest(context.Background(), binding.ToMessage(&ev), req); err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	return functest.Do(t, req)
}

// With DEADLETTER_OIDC_* set, POST / stores a dead letter only from a
// sender with a valid OIDC token of an allowed subject, as Knative
// Eventing's OIDC sends with each delivery to a sink with an audience:
// RS256 and ES256 tokens of the issuer's keys are admitted, a key the
// issuer rotated in later too; no token, a token that is not a JWT, a
// wrong signature, alg none, another issuer or audience, an expired or
// not yet valid token are 401, another subject 403, and nothing of them
// is stored. The operator endpoints keep their own token.
func TestDeadLetterSendersNeedOIDCToken(t *testing.T) {
	t.Parallel()
	is := newIssuer(t)
	r1, _ := rsa.GenerateKey(rand.Reader, 2048)
	e1, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	r2, _ := rsa.GenerateKey(rand.Reader, 2048)
	stranger, _ := rsa.GenerateKey(rand.Reader, 2048)
	is.addRSA("r1", &r1.PublicKey)
	is.addEC("e1", &e1.PublicKey)

	url := pgtest.URL(t)
	const aud = "qinqing-dead-letter"
	const sub = "system:serviceaccount:qinqing:oidc-trigger-appeal-router"
	fn := functest.Start(t, binary, "DATABASE_URL="+url, "ADMIN_TOKEN="+token, "K_SINK="+functest.NewSink(t).URL,
		"DEADLETTER_OIDC_ISSUER="+is.srv.URL, "DEADLETTER_OIDC_AUDIENCE="+aud,
		"DEADLETTER_OIDC_SUBJECTS=system:serviceaccount:qinqing:*, system:serviceaccount:knative-eventing:eventing-controller")
	now := time.Now()
	claims := func(change func(map[string]any)) map[string]any {
		c := map[string]any{"iss": is.srv.URL, "aud": []string{aud}, "sub": sub,
			"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(10 * time.Minute).Unix()}
		if change != nil {
			change(c)
		}
		return c
	}
	bearer := func(tok string) string { return "Bearer " + tok }
	refused := []struct {
		name, auth string
		status     int
	}{
		{"NoToken", "", 401},
		{"BasicAuth", "Basic dXNlcjpwYXNz", 401},
		{"NotAJWT", bearer("not-a-jwt"), 401},
		{"WrongSignature", bearer(sign(t, "RS256", "r1", stranger, claims(nil))), 401},
		{"AlgNone", bearer(unsigned(claims(nil))), 401},
		{"ES256AsRS256", bearer(sign(t, "RS256", "e1", e1, claims(nil))), 401},
		{"UnknownKey", bearer(sign(t, "RS256", "nope", r1, claims(nil))), 401},
		{"OtherIssuer", bearer(sign(t, "RS256", "r1", r1, claims(func(c map[string]any) { c["iss"] = "https://elsewhere" }))), 401},
		{"OtherAudience", bearer(sign(t, "RS256", "r1", r1, claims(func(c map[string]any) { c["aud"] = "broker-ingress" }))), 401},
		{"Expired", bearer(sign(t, "RS256", "r1", r1, claims(func(c map[string]any) { c["exp"] = now.Add(-2 * time.Minute).Unix() }))), 401},
		{"NoExpiry", bearer(sign(t, "RS256", "r1", r1, claims(func(c map[string]any) { delete(c, "exp") }))), 401},
		{"NotYetValid", bearer(sign(t, "RS256", "r1", r1, claims(func(c map[string]any) { c["nbf"] = now.Add(5 * time.Minute).Unix() }))), 401},
		{"OtherSubject", bearer(sign(t, "RS256", "r1", r1, claims(func(c map[string]any) { c["sub"] = "system:serviceaccount:default:attacker" }))), 403},
	}
	for _, tc := range refused {
		t.Run("Err"+tc.name, func(t *testing.T) {
			r := sendWith(t, fn, deadLetter(filterDest, 500, "boom"), tc.auth)
			if r.Status != tc.status || r.Header.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("got %d %q %s, want %d problem+json", r.Status, r.Header.Get("Content-Type"), r.Body, tc.status)
			}
			if tc.status == 401 && !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Fatalf("401 without a Bearer challenge: %v", r.Header)
			}
		})
	}
	ctx := context.Background()
	pool := pgtest.PoolFor(t, url)
	count := func() int {
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM deadletter.dead_letters`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(); n != 0 {
		t.Fatalf("%d dead letters stored from refused senders", n)
	}

	for _, tc := range []struct{ name, auth string }{
		{"RS256", bearer(sign(t, "RS256", "r1", r1, claims(nil)))},
		{"ES256", bearer(sign(t, "ES256", "e1", e1, claims(func(c map[string]any) { c["aud"] = aud })))},
		{"ListedSubject", bearer(sign(t, "RS256", "r1", r1, claims(func(c map[string]any) { c["sub"] = "system:serviceaccount:knative-eventing:eventing-controller" })))},
	} {
		if r := sendWith(t, fn, deadLetter(filterDest, 500, "boom"), tc.auth); r.Status != http.StatusAccepted {
			t.Fatalf("%s: got %d %s, want 202", tc.name, r.Status, r.Body)
		}
	}
	// The issuer rotates in a new key after the function cached the set:
	// a token of it fetches the keys again (the rate limit waited out;
	// first pass only, the keys are no database matter).
	want := 3
	if !pgtest.ThroughPgBouncer() {
		time.Sleep(refetchEvery + time.Second)
		is.addRSA("r2", &r2.PublicKey)
		if r := sendWith(t, fn, deadLetter(filterDest, 500, "boom"), bearer(sign(t, "RS256", "r2", r2, claims(nil)))); r.Status != http.StatusAccepted {
			t.Fatalf("a key rotated in: got %d %s, want 202", r.Status, r.Body)
		}
		want = 4
	}
	if n := count(); n != want {
		t.Fatalf("%d dead letters stored, want %d", n, want)
	}
	// The operator endpoints are the admin token's, not the senders'.
	req, _ := http.NewRequest(http.MethodGet, fn.URL+"/deadletters", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	if r := functest.Do(t, req); r.Status != http.StatusOK {
		t.Fatalf("GET /deadletters with the admin token: %d %s", r.Status, r.Body)
	}
}

// Half a configuration stops the function at start with one line.
func TestDeadLetterOIDCConfig(t *testing.T) {
	t.Parallel()
	for _, env := range [][]string{
		{"DEADLETTER_OIDC_AUDIENCE=qinqing-dead-letter"},
		{"DEADLETTER_OIDC_ISSUER=https://kubernetes.default.svc", "DEADLETTER_OIDC_SUBJECTS=system:serviceaccount:qinqing:*"},
		{"DEADLETTER_OIDC_ISSUER=https://kubernetes.default.svc", "DEADLETTER_OIDC_AUDIENCE=qinqing-dead-letter"},
		{"DEADLETTER_OIDC_ISSUER=kubernetes", "DEADLETTER_OIDC_AUDIENCE=a", "DEADLETTER_OIDC_SUBJECTS=s"},
	} {
		out, err := functest.RunConfigOnly(t, binary, append([]string{"DATABASE_URL=postgres://x/y"}, env...)...)
		if err == nil || !strings.Contains(string(out), "DEADLETTER_OIDC_") {
			t.Errorf("%v: err %v, output %s", env, err, out)
		}
	}
}
