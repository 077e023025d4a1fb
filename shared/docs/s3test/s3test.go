// Package s3test runs an S3-compatible server (gofakes3) over plain HTTP
// for tests and the local stack: a real S3 protocol endpoint, not a mock
// of the store.
package s3test

import (
	"context"
	"net"
	"net/http"
	"os"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3afero"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/spf13/afero"

	"github.com/qinqing/qinqing/shared/docs"
)

// Server is a running S3-compatible endpoint with one bucket.
type Server struct {
	URL    string
	Bucket string
	srv    *http.Server
}

// Credentials any client may use against the server (it checks none).
const (
	AccessKey = "qinqing-test"
	SecretKey = "qinqing-test-secret"
)

// Start serves a bucket on addr ("127.0.0.1:0" for any port). With dir
// empty, objects live in memory; otherwise in files under dir.
func Start(addr, dir, bucket string) (*Server, error) {
	var backend gofakes3.Backend
	if dir == "" {
		backend = s3mem.New()
	} else {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		b, err := s3afero.MultiBucket(afero.NewBasePathFs(afero.NewOsFs(), dir))
		if err != nil {
			return nil, err
		}
		backend = b
	}
	if err := backend.CreateBucket(bucket); err != nil && !gofakes3.IsAlreadyExists(err) {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	faker := gofakes3.New(backend, gofakes3.WithAutoBucket(true))
	s := &Server{URL: "http://" + ln.Addr().String(), Bucket: bucket, srv: &http.Server{Handler: faker.Server()}}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// Close stops the server.
func (s *Server) Close() error { return s.srv.Shutdown(context.Background()) }

// Env is the contract environment pointing a function at the server.
func (s *Server) Env() []string {
	return []string{
		"S3_BUCKET=" + s.Bucket,
		"S3_ENDPOINT=" + s.URL,
		"S3_REGION=us-east-1",
		"S3_FORCE_PATH_STYLE=true",
		"AWS_ACCESS_KEY_ID=" + AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + SecretKey,
	}
}

// Config is the docs configuration pointing at the server.
func (s *Server) Config() docs.S3 {
	return docs.S3{Bucket: s.Bucket, Endpoint: s.URL, Region: "us-east-1", ForcePathStyle: true}
}

// New starts an in-memory server for one test and returns a store on it.
// The store's credentials come from the environment as in production, so
// New sets them for the test.
func New(t testing.TB) (*Server, *docs.Store) {
	t.Helper()
	s, err := Start("127.0.0.1:0", "", "qinqing-test")
	if err != nil {
		t.Fatalf("s3test: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if os.Getenv("AWS_ACCESS_KEY_ID") == "" {
		os.Setenv("AWS_ACCESS_KEY_ID", AccessKey)
		os.Setenv("AWS_SECRET_ACCESS_KEY", SecretKey)
	}
	store, err := docs.Open(context.Background(), s.Config())
	if err != nil {
		t.Fatalf("s3test: %v", err)
	}
	return s, store
}
