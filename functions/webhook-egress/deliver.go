package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/qinqing/qinqing/shared/portals"
	"github.com/qinqing/qinqing/shared/runtime"
)

// Limits of one POST to a portal.
const (
	errorSnippetBytes = 300      // of the portal's answer, kept with a failed attempt
	drainBytes        = 64 << 10 // read of an answer body, so the connection can be reused
)

// Clients posts updates to portals: bounded in time, never following a
// redirect, ignoring proxy settings, and — unless the portal allows it —
// refusing to connect to non-public addresses. The check runs on the
// address each connection is actually made to (net.Dialer.Control),
// after DNS resolution, so a name that resolves (or later re-resolves) to
// a private address cannot get around it.
type Clients struct {
	public, any *http.Client
}

// NewClients returns the clients for a bound of timeout per POST.
func NewClients(timeout time.Duration) *Clients {
	return &Clients{public: newClient(timeout, true), any: newClient(timeout, false)}
}

// For returns the client for a portal's endpoint.
func (c *Clients) For(n *portals.Notify) *http.Client {
	if n.AllowPrivate {
		return c.any
	}
	return c.public
}

// errRefusedAddress is a connection the SSRF check refused.
var errRefusedAddress = errors.New("refused")

func newClient(timeout time.Duration, publicOnly bool) *http.Client {
	d := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	if publicOnly {
		d.Control = func(network, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("%w: cannot judge address %q", errRefusedAddress, address)
			}
			if !portals.PublicAddr(ap.Addr()) {
				return fmt.Errorf("%w: %s is a loopback, link-local, private or other non-public address (the portal has no \"allowPrivate\": true)", errRefusedAddress, ap.Addr())
			}
			return nil
		}
	}
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:                 nil, // a proxy would make the address check judge the proxy
			DialContext:           d.DialContext,
			TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
			TLSHandshakeTimeout:   timeout,
			ResponseHeaderTimeout: timeout,
			ForceAttemptHTTP2:     true,
			MaxIdleConnsPerHost:   4,
			IdleConnTimeout:       90 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Body returns the Standard Webhooks body of an event:
// {"type": <ce type>, "timestamp": <ce time>, "data": <ce data>}, the data
// byte for byte.
func Body(m runtime.Meta, data []byte) []byte {
	var b bytes.Buffer
	typ, _ := json.Marshal(m.Type)
	ts, _ := json.Marshal(m.Time.UTC().Format(time.RFC3339Nano))
	b.WriteString(`{"type":`)
	b.Write(typ)
	b.WriteString(`,"timestamp":`)
	b.Write(ts)
	b.WriteString(`,"data":`)
	b.Write(data)
	b.WriteString(`}`)
	return b.Bytes()
}

// attemptResult is the outcome of one POST.
type attemptResult struct {
	status     string
	httpStatus *int
	latency    time.Duration
	err        string
}

// post sends one signed update and classifies the answer: 2xx delivered;
// a timeout, a network error, 429 or 5xx to be retried; any other answer
// (another 4xx, a redirect, an unexpected status) or a refused address a
// permanent failure.
func post(ctx context.Context, client *http.Client, n *portals.Notify, webhookID string, body []byte, now time.Time) attemptResult {
	ts := strconv.FormatInt(now.Unix(), 10)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.URL.String(), bytes.NewReader(body))
	if err != nil {
		return attemptResult{status: StatusFailed, err: "cannot build the request: " + err.Error()}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "qinqing-webhook-egress")
	req.Header.Set(portals.HeaderID, webhookID)
	req.Header.Set(portals.HeaderTimestamp, ts)
	req.Header.Set(portals.HeaderSignature, n.Sign(webhookID, ts, body))
	start := time.Now()
	resp, err := client.Do(req)
	latency := time.Since(start)
	if err != nil {
		switch {
		case errors.Is(err, errRefusedAddress):
			return attemptResult{status: StatusFailed, latency: latency, err: clip(unwrap(err))}
		case isTimeout(err):
			return attemptResult{status: StatusRetrying, latency: latency, err: fmt.Sprintf("no answer within %s", client.Timeout)}
		default:
			return attemptResult{status: StatusRetrying, latency: latency, err: clip(unwrap(err))}
		}
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, errorSnippetBytes))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, drainBytes))
	code := resp.StatusCode
	res := attemptResult{httpStatus: &code, latency: latency}
	answer := fmt.Sprintf("answered %d", code)
	if s := strings.Join(strings.Fields(string(snippet)), " "); s != "" {
		answer += ": " + s
	}
	switch {
	case code >= 200 && code < 300:
		res.status = StatusDelivered
	case code == http.StatusTooManyRequests || code >= 500:
		res.status, res.err = StatusRetrying, clip(answer)
	case code >= 300 && code < 400:
		res.status, res.err = StatusFailed, fmt.Sprintf("answered %d: redirects are not followed; configure the final URL", code)
	default:
		res.status, res.err = StatusFailed, clip(answer)
	}
	return res
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// unwrap drops the url.Error wrapping, whose URL may carry the portal's
// query string.
func unwrap(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}

func clip(s string) string {
	if r := []rune(s); len(r) > errorSnippetBytes {
		return string(r[:errorSnippetBytes]) + "…"
	}
	return s
}
