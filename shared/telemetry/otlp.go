package telemetry

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// qinqing's own OTLP/HTTP exporters (http/protobuf, the one protocol we
// speak). The OpenTelemetry Go exporters, otlptracehttp and
// otlpmetrichttp, build their requests with the generated OTLP collector
// packages, which also hold the gRPC service stubs: every function then
// linked gRPC and the protobuf runtime, and gRPC's package initialisers
// alone made each function's idle memory 3–5 MiB larger (measured against
// the bare receiver of the cold-start benchmark; idle RSS is an issue-14
// goal). These exporters write the same messages with wire.go and take
// the same OTEL_EXPORTER_OTLP_* settings:
//
//   - OTEL_EXPORTER_OTLP_ENDPOINT (the signal's path /v1/traces or
//     /v1/metrics appended) or OTEL_EXPORTER_OTLP_{TRACES,METRICS}_ENDPOINT
//     (used as it is);
//   - …_HEADERS ("k=v,k2=v2", values URL-encoded), …_TIMEOUT (ms, 10000),
//     …_COMPRESSION (gzip, at its fastest level, or none: the default),
//     …_CERTIFICATE (CA bundle file),
//     …_CLIENT_CERTIFICATE and …_CLIENT_KEY (mutual TLS);
//   - OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE (cumulative, delta,
//     lowmemory).
//
// A signal-specific variable wins over the general one. Failed exports
// are retried as the OTLP specification says: 429, 502, 503 and 504 and
// network errors, with exponential backoff (honouring Retry-After) until
// the export's context ends; other answers are permanent errors.

// otlpClient posts encoded export requests of one signal.
type otlpClient struct {
	url     string
	headers http.Header
	gzip    bool
	timeout time.Duration
	http    *http.Client

	// One export at a time (the SDK calls an exporter so anyway), with
	// the buffers kept from one export to the next: an export of 512
	// spans is some 100 KiB encoded, and a new gzip writer several
	// hundred KiB of compression state (a sync.Pool loses both at every
	// collection, which comes many times between two exports).
	mu  sync.Mutex
	buf []byte
	zip *zipper
}

// zipper is a gzip writer kept with its output buffer.
type zipper struct {
	w   *gzip.Writer
	out bytes.Buffer
}

// otlpSetting reads OTEL_EXPORTER_OTLP_<SIGNAL>_<name>, else
// OTEL_EXPORTER_OTLP_<name>.
func otlpSetting(signal, name string) (string, string) {
	if v := strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_" + signal + "_" + name)); v != "" {
		return v, "OTEL_EXPORTER_OTLP_" + signal + "_" + name
	}
	return strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_" + name)), "OTEL_EXPORTER_OTLP_" + name
}

// newOTLPClient configures the client of signal ("TRACES" or "METRICS")
// from the environment.
func newOTLPClient(signal string) (*otlpClient, error) {
	c := &otlpClient{headers: http.Header{}, timeout: 10 * time.Second}
	c.headers.Set("Content-Type", "application/x-protobuf")
	c.headers.Set("User-Agent", "qinqing-otlp")
	if v := strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_" + signal + "_ENDPOINT")); v != "" {
		c.url = v
	} else {
		base := strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_ENDPOINT"))
		c.url = strings.TrimSuffix(base, "/") + "/v1/" + strings.ToLower(signal)
	}
	u, err := url.Parse(c.url)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("OTLP %s endpoint %q: not an http(s) URL", strings.ToLower(signal), c.url)
	}
	if v, name := otlpSetting(signal, "HEADERS"); v != "" {
		for _, pair := range strings.Split(v, ",") {
			k, val, ok := strings.Cut(pair, "=")
			k = strings.TrimSpace(k)
			if !ok || k == "" {
				// Never echo the value: headers carry API keys.
				return nil, fmt.Errorf("%s: an entry is not key=value", name)
			}
			dv, err := url.PathUnescape(strings.TrimSpace(val))
			if err != nil {
				return nil, fmt.Errorf("%s: the value of %q is not URL-encoded", name, k)
			}
			c.headers.Set(k, dv)
		}
	}
	if v, name := otlpSetting(signal, "TIMEOUT"); v != "" {
		ms, err := strconv.Atoi(v)
		if err != nil || ms <= 0 {
			return nil, fmt.Errorf("%s: want milliseconds > 0, got %q", name, v)
		}
		c.timeout = time.Duration(ms) * time.Millisecond
	}
	switch v, name := otlpSetting(signal, "COMPRESSION"); v {
	case "", "none":
	case "gzip":
		c.gzip = true
		c.headers.Set("Content-Encoding", "gzip")
	default:
		return nil, fmt.Errorf("%s: gzip or none, got %q", name, v)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if ca, name := otlpSetting(signal, "CERTIFICATE"); ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: no PEM certificate in %s", name, ca)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	cert, certName := otlpSetting(signal, "CLIENT_CERTIFICATE")
	key, _ := otlpSetting(signal, "CLIENT_KEY")
	if cert != "" || key != "" {
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("%s/CLIENT_KEY: %w", certName, err)
		}
		if tr.TLSClientConfig == nil {
			tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		tr.TLSClientConfig.Certificates = []tls.Certificate{pair}
	}
	c.http = &http.Client{Transport: tr}
	return c, nil
}

// send encodes one request into the client's buffer and posts it.
func (c *otlpClient) send(ctx context.Context, encode func([]byte) []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf = encode(c.buf[:0])
	return c.post(ctx, c.buf)
}

// post sends one encoded request, retrying transient failures until ctx
// (bounded by the timeout per attempt) ends. c.mu is held.
func (c *otlpClient) post(ctx context.Context, body []byte) error {
	if c.gzip {
		z := c.zip
		if z == nil {
			z = &zipper{}
			z.w, _ = gzip.NewWriterLevel(&z.out, gzip.BestSpeed)
			c.zip = z
		}
		z.out.Reset()
		z.w.Reset(&z.out)
		_, _ = z.w.Write(body)
		if err := z.w.Close(); err != nil {
			return err
		}
		body = z.out.Bytes()
	}
	backoff := 500 * time.Millisecond
	for {
		retry, wait, err := c.attempt(ctx, body)
		if err == nil || !retry {
			return err
		}
		if wait <= 0 {
			wait = backoff
			backoff = min(2*backoff, 30*time.Second)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (giving up: %v)", err, ctx.Err())
		case <-t.C:
		}
	}
}

// attempt posts once: whether a failure may be retried, and after how long
// when the server said (Retry-After).
func (c *otlpClient) attempt(ctx context.Context, body []byte) (retry bool, wait time.Duration, err error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return false, 0, err
	}
	req.Header = c.headers.Clone()
	resp, err := c.http.Do(req)
	if err != nil {
		return true, 0, fmt.Errorf("OTLP export to %s: %w", req.URL.Redacted(), err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		// A partial success (some items rejected) is still a 200; the
		// collector logs what it refused.
		return false, 0, nil
	}
	err = fmt.Errorf("OTLP export to %s: %s", req.URL.Redacted(), resp.Status)
	if len(msg) > 0 && !bytes.ContainsRune(msg, 0) && strings.HasPrefix(resp.Header.Get("Content-Type"), "text/") {
		err = fmt.Errorf("%w: %s", err, strings.TrimSpace(string(msg)))
	}
	switch resp.StatusCode {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		if s, perr := strconv.Atoi(resp.Header.Get("Retry-After")); perr == nil && s >= 0 {
			wait = time.Duration(s) * time.Second
		}
		return true, wait, err
	}
	return false, 0, err
}

// shutdownOnce is what both exporters share: a client, and whether
// Shutdown was called (exports after it fail, as the SDK expects).
type shutdownOnce struct {
	c    *otlpClient
	mu   sync.Mutex
	done bool
}

func (s *shutdownOnce) closed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.done
}

func (s *shutdownOnce) Shutdown(context.Context) error {
	s.mu.Lock()
	s.done = true
	s.mu.Unlock()
	s.c.http.CloseIdleConnections()
	return nil
}

// spanExporter is an sdktrace.SpanExporter over OTLP/HTTP.
type spanExporter struct{ shutdownOnce }

func newSpanExporter() (*spanExporter, error) {
	c, err := newOTLPClient("TRACES")
	if err != nil {
		return nil, err
	}
	return &spanExporter{shutdownOnce{c: c}}, nil
}

func (e *spanExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	if len(spans) == 0 {
		return nil
	}
	if e.closed() {
		return errors.New("OTLP span exporter is shut down")
	}
	return e.c.send(ctx, func(b []byte) []byte { return appendTraces(b, spans) })
}

// metricExporter is an sdkmetric.Exporter over OTLP/HTTP.
type metricExporter struct {
	shutdownOnce
	temporality sdkmetric.TemporalitySelector
}

func newMetricExporter() (*metricExporter, error) {
	c, err := newOTLPClient("METRICS")
	if err != nil {
		return nil, err
	}
	e := &metricExporter{shutdownOnce: shutdownOnce{c: c}, temporality: sdkmetric.DefaultTemporalitySelector}
	switch v := strings.ToLower(strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE"))); v {
	case "", "cumulative":
	case "delta":
		e.temporality = func(k sdkmetric.InstrumentKind) metricdata.Temporality {
			switch k {
			case sdkmetric.InstrumentKindUpDownCounter, sdkmetric.InstrumentKindObservableUpDownCounter:
				return metricdata.CumulativeTemporality
			}
			return metricdata.DeltaTemporality
		}
	case "lowmemory":
		e.temporality = func(k sdkmetric.InstrumentKind) metricdata.Temporality {
			switch k {
			case sdkmetric.InstrumentKindCounter, sdkmetric.InstrumentKindHistogram:
				return metricdata.DeltaTemporality
			}
			return metricdata.CumulativeTemporality
		}
	default:
		return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE: cumulative, delta or lowmemory, got %q", v)
	}
	if v := strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION")); v != "" && v != "explicit_bucket_histogram" {
		return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION: only explicit_bucket_histogram is supported, got %q", v)
	}
	return e, nil
}

func (e *metricExporter) Temporality(k sdkmetric.InstrumentKind) metricdata.Temporality {
	return e.temporality(k)
}

func (e *metricExporter) Aggregation(k sdkmetric.InstrumentKind) sdkmetric.Aggregation {
	return sdkmetric.DefaultAggregationSelector(k)
}

func (e *metricExporter) Export(ctx context.Context, rm *metricdata.ResourceMetrics) error {
	if e.closed() {
		return errors.New("OTLP metric exporter is shut down")
	}
	var skipped int
	err := e.c.send(ctx, func(b []byte) []byte {
		b, skipped = appendMetrics(b, rm)
		return b
	})
	if err == nil && skipped > 0 {
		err = fmt.Errorf("OTLP metric export: %d metrics of an aggregation qinqing does not encode were left out", skipped)
	}
	return err
}

func (e *metricExporter) ForceFlush(context.Context) error { return nil }
