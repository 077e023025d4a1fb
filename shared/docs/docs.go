// Package docs is the document store: one S3 bucket (real S3, MinIO, or an
// S3-compatible test server) for rosters, reports, certificates and the
// documents enterprises upload through presigned PUT URLs.
package docs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/qinqing/qinqing/shared/telemetry"
)

// S3 is the S3 part of a function's configuration (contract section 1).
type S3 struct {
	// Bucket holds every document. Required by functions that store documents.
	Bucket string `envconfig:"S3_BUCKET"`
	// Endpoint is an S3-compatible endpoint URL; empty means AWS.
	Endpoint string `envconfig:"S3_ENDPOINT"`
	// Region of the bucket.
	Region string `envconfig:"S3_REGION" default:"us-east-1"`
	// ForcePathStyle addresses buckets as endpoint/bucket (MinIO-style servers).
	ForcePathStyle bool `envconfig:"S3_FORCE_PATH_STYLE"`
}

// Store puts, gets and presigns objects in one bucket.
type Store struct {
	Bucket string
	cfg    S3
	once   sync.Once
	client *s3.Client
	signer *s3.PresignClient
	err    error
}

// Open checks the configuration and returns the store. The client is
// built the production way on first use (so a start-up, or an event that
// needs no document, does not pay for it): the default AWS credential
// chain as a pod meets it (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, web
// identity, container endpoint, instance role: awsConfig), then the
// endpoint and addressing options. Checksums are computed and checked
// only when an operation requires them: the SDK's default aws-chunked
// uploads with CRC trailers are stored as garbage by some S3-compatible
// servers. It makes no network call.
func Open(_ context.Context, c S3) (*Store, error) {
	if c.Bucket == "" {
		return nil, errors.New("required key S3_BUCKET missing value")
	}
	return &Store{Bucket: c.Bucket, cfg: c}, nil
}

// build makes the client once. A configuration the SDK cannot load gives
// a client whose every call fails with that error.
func (s *Store) build() {
	s.once.Do(func() {
		awsCfg, err := awsConfig(os.Getenv, s.cfg.Region)
		if err != nil {
			s.err = fmt.Errorf("s3 config: %w", err)
			s.client = s3.New(s3.Options{Region: s.cfg.Region, APIOptions: []func(*middleware.Stack) error{
				func(*middleware.Stack) error { return s.err },
			}})
		} else {
			if t := telemetry.Current(); t.Tracing {
				// A child span per S3 call of the event's span.
				awsCfg.APIOptions = append(awsCfg.APIOptions, traceCalls(t.Tracer(), s.cfg.Region))
			}
			s.client = s3.NewFromConfig(awsCfg, func(o *s3.Options) {
				if s.cfg.Endpoint != "" {
					o.BaseEndpoint = aws.String(s.cfg.Endpoint)
				}
				o.UsePathStyle = s.cfg.ForcePathStyle
			})
		}
		s.signer = s3.NewPresignClient(s.client)
	})
}

// Client exposes the S3 client for what the store does not wrap.
func (s *Store) Client() *s3.Client {
	s.build()
	return s.client
}

// Put writes an object. Keys are deterministic in qinqing, so a retried
// event overwrites the same object instead of leaving orphans.
func (s *Store) Put(ctx context.Context, key, contentType string, body []byte) error {
	_, err := s.Client().PutObject(ctx, &s3.PutObjectInput{
		Bucket:        aws.String(s.Bucket),
		Key:           aws.String(key),
		Body:          bytes.NewReader(body),
		ContentLength: aws.Int64(int64(len(body))),
		ContentType:   aws.String(contentType),
	})
	if err != nil {
		return fmt.Errorf("put s3://%s/%s: %w", s.Bucket, key, err)
	}
	return nil
}

// ErrNotFound is returned by Get and Open for a missing key.
var ErrNotFound = errors.New("document not found")

// Open streams an object; the caller closes it.
func (s *Store) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	out, err := s.Client().GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String(key)})
	if err != nil {
		var nsk *types.NoSuchKey
		if errors.As(err, &nsk) {
			return nil, fmt.Errorf("s3://%s/%s: %w", s.Bucket, key, ErrNotFound)
		}
		return nil, fmt.Errorf("get s3://%s/%s: %w", s.Bucket, key, err)
	}
	return out.Body, nil
}

// Get reads a whole object.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	r, err := s.Open(ctx, key)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read s3://%s/%s: %w", s.Bucket, key, err)
	}
	return b, nil
}
