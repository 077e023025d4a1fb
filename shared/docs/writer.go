package docs

import (
	"bytes"
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// DefaultPartSize is the size at which a Writer uploads a part (S3 wants
// at least 5 MiB for every part but the last).
const DefaultPartSize = 8 << 20

// Writer streams an object of unknown size to S3 with bounded memory: a
// single PUT when it stays under its part size, a multipart upload
// otherwise. Close completes the object; Abort drops an unfinished upload.
type Writer struct {
	ctx         context.Context
	store       *Store
	key         string
	contentType string
	partSize    int
	buf         []byte
	uploadID    *string
	parts       []types.CompletedPart
}

// NewWriter returns a Writer for key that uploads parts of partSize bytes
// (DefaultPartSize when partSize ≤ 0; S3 refuses parts under 5 MiB but
// the last, which tests may ignore on their own server).
func (s *Store) NewWriter(ctx context.Context, key, contentType string, partSize int) *Writer {
	if partSize <= 0 {
		partSize = DefaultPartSize
	}
	return &Writer{ctx: ctx, store: s, key: key, contentType: contentType, partSize: partSize}
}

// Write buffers p and uploads a part whenever the part size is waiting.
func (w *Writer) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	if len(w.buf) >= w.partSize {
		if err := w.uploadPart(); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

func (w *Writer) uploadPart() error {
	c, bucket := w.store.Client(), w.store.Bucket
	if w.uploadID == nil {
		out, err := c.CreateMultipartUpload(w.ctx, &s3.CreateMultipartUploadInput{
			Bucket: aws.String(bucket), Key: aws.String(w.key), ContentType: aws.String(w.contentType)})
		if err != nil {
			return fmt.Errorf("start upload of s3://%s/%s: %w", bucket, w.key, err)
		}
		w.uploadID = out.UploadId
	}
	n := int32(len(w.parts) + 1)
	out, err := c.UploadPart(w.ctx, &s3.UploadPartInput{
		Bucket: aws.String(bucket), Key: aws.String(w.key), UploadId: w.uploadID, PartNumber: aws.Int32(n),
		Body: bytes.NewReader(w.buf), ContentLength: aws.Int64(int64(len(w.buf)))})
	if err != nil {
		return fmt.Errorf("upload part %d of s3://%s/%s: %w", n, bucket, w.key, err)
	}
	w.parts = append(w.parts, types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(n)})
	w.buf = w.buf[:0]
	return nil
}

// Close writes what is buffered and completes the object.
func (w *Writer) Close() error {
	if w.uploadID == nil {
		return w.store.Put(w.ctx, w.key, w.contentType, w.buf)
	}
	if len(w.buf) > 0 {
		if err := w.uploadPart(); err != nil {
			return err
		}
	}
	_, err := w.store.Client().CompleteMultipartUpload(w.ctx, &s3.CompleteMultipartUploadInput{
		Bucket: aws.String(w.store.Bucket), Key: aws.String(w.key), UploadId: w.uploadID,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: w.parts}})
	if err != nil {
		return fmt.Errorf("complete upload of s3://%s/%s: %w", w.store.Bucket, w.key, err)
	}
	return nil
}

// Abort drops an unfinished multipart upload (best effort: the bucket's
// lifecycle rule for incomplete uploads is the backstop).
func (w *Writer) Abort() {
	if w.uploadID == nil {
		return
	}
	_, _ = w.store.Client().AbortMultipartUpload(context.WithoutCancel(w.ctx), &s3.AbortMultipartUploadInput{
		Bucket: aws.String(w.store.Bucket), Key: aws.String(w.key), UploadId: w.uploadID})
}
