package docs

import (
	"context"
	"fmt"
	"path"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/qinqing/qinqing/shared/event"
)

// Upload is a presigned PUT handed to an enterprise for one document. The
// wire type lives in shared/event, so that the event contracts can name it
// without linking the S3 client into every function.
type Upload = event.Upload

// UploadTTL is how long a presigned upload URL stays valid.
const UploadTTL = 15 * time.Minute

// PresignUploads presigns one PUT per declared document, under
// prefix/<n>-<fileName> (n counting from 1), each bound to the document's
// declared content type and size (PresignPut). The documents must have
// been validated (event.ValidateDocuments): their file names are part of
// the keys.
func (s *Store) PresignUploads(ctx context.Context, prefix string, documents []event.Document) ([]Upload, error) {
	uploads := make([]Upload, 0, len(documents))
	for i, d := range documents {
		key := path.Join(prefix, strconv.Itoa(i+1)+"-"+d.FileName)
		u, err := s.PresignPut(ctx, key, d.ContentType, d.FileName, d.SizeBytes)
		if err != nil {
			return nil, err
		}
		uploads = append(uploads, u)
	}
	return uploads, nil
}

// PresignPut returns a presigned PUT for key, valid UploadTTL from now,
// that signs the content type and the size: the request must carry
// Content-Type contentType and Content-Length size, so S3 refuses a larger
// (or smaller) body with 403 SignatureDoesNotMatch. Presigning is local
// computation, no network call.
func (s *Store) PresignPut(ctx context.Context, key, contentType, fileName string, size int64) (Upload, error) {
	if size <= 0 {
		return Upload{}, fmt.Errorf("presign s3://%s/%s: size %d is not positive", s.Bucket, key, size)
	}
	now := time.Now().UTC().Truncate(time.Second)
	s.build()
	req, err := s.signer.PresignPutObject(ctx, &s3.PutObjectInput{
		Bucket:        aws.String(s.Bucket),
		Key:           aws.String(key),
		ContentType:   aws.String(contentType),
		ContentLength: aws.Int64(size),
	}, s3.WithPresignExpires(UploadTTL))
	if err != nil {
		return Upload{}, fmt.Errorf("presign s3://%s/%s: %w", s.Bucket, key, err)
	}
	return Upload{FileName: fileName, Key: key, URL: req.URL, ExpiresAt: now.Add(UploadTTL)}, nil
}
