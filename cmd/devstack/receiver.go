package main

import (
	"crypto/hmac"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"

	"github.com/qinqing/qinqing/shared/portals"
	"github.com/qinqing/qinqing/shared/runtime"
)

// receiver plays the portals' endpoints for webhook-egress: POST
// /portals/<name> checks the Standard Webhooks signature with that
// portal's notify key, as a portal would, and keeps one line per delivery.
type receiver struct {
	url  string
	keys map[string][]byte // portal → notify signing key
	mu   sync.Mutex
	got  []delivery
}

// delivery is one update a portal received.
type delivery struct {
	Portal, ID, Type string
	Brief            string
	Verified         bool
}

func startReceiver(keys map[string][]byte) (*receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &receiver{url: "http://" + ln.Addr().String(), keys: keys}
	go func() { _ = http.Serve(ln, r) }()
	return r, nil
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	portal, ok := strings.CutPrefix(req.URL.Path, "/portals/")
	key, known := r.keys[portal]
	if req.Method != http.MethodPost || !ok || !known {
		http.NotFound(w, req)
		return
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, runtime.MaxBodyBytes))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	id, ts := req.Header.Get(portals.HeaderID), req.Header.Get(portals.HeaderTimestamp)
	want, _ := base64.StdEncoding.DecodeString(portals.Sign(key, id, ts, body))
	sigs, _ := portals.ParseSignatures(req.Header.Get(portals.HeaderSignature))
	verified := false
	for _, s := range sigs {
		verified = verified || hmac.Equal(s, want)
	}
	var b struct {
		Type string          `json:"type"`
		Data json.RawMessage `json:"data"`
	}
	_ = json.Unmarshal(body, &b)
	r.mu.Lock()
	r.got = append(r.got, delivery{Portal: portal, ID: id, Type: b.Type, Brief: briefOfUpdate(b.Data), Verified: verified})
	r.mu.Unlock()
	if !verified {
		http.Error(w, "signature does not verify", http.StatusUnauthorized)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// since returns the deliveries after the n-th.
func (r *receiver) since(n int) []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n >= len(r.got) {
		return nil
	}
	return append([]delivery(nil), r.got[n:]...)
}

func (d delivery) String() string {
	check := "signature verified"
	if !d.Verified {
		check = "signature NOT verified"
	}
	return fmt.Sprintf("✉ %s ← %s %s (%s)", d.Portal, d.Type, d.Brief, check)
}

// briefOfUpdate names the case of an update.
func briefOfUpdate(data []byte) string {
	var m map[string]any
	if json.Unmarshal(data, &m) != nil {
		return ""
	}
	var parts []string
	for _, k := range []string{"appealId", "signupId", "status", "level", "disbursementId", "batchId", "reason"} {
		if v, ok := m[k]; ok && v != "" {
			parts = append(parts, fmt.Sprintf("%s=%v", k, v))
		}
	}
	return strings.Join(parts, " ")
}
