package runtime

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
)

// AdminOnly wraps an operator endpoint with the bearer-token check:
// "Authorization: Bearer <token>", compared in constant time (both hashed
// first, so not even the length is compared early); anything else is a
// 401 problem with a WWW-Authenticate header naming realm.
func AdminOnly(token, realm string, h http.HandlerFunc) http.HandlerFunc {
	want := sha256.Sum256([]byte(token))
	return func(w http.ResponseWriter, r *http.Request) {
		scheme, got, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		sum := sha256.Sum256([]byte(strings.TrimSpace(got)))
		if !ok || !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare(sum[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="`+realm+`"`)
			WriteProblem(w, Problem{Type: ProblemUnauthorized, Status: http.StatusUnauthorized,
				Detail: "missing or wrong bearer token: send Authorization: Bearer <ADMIN_TOKEN>"})
			return
		}
		h(w, r)
	}
}
