package main

import (
	"bytes"
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/qinqing/qinqing/shared/docs"
)

// partSize is the size at which objectWriter uploads a part (S3 wants at
// least 5 MiB for every part but the last).
var partSize = 8 << 20

// objectWriter streams an object of unknown size to S3 with bounded memory:
// a single PUT when it stays under partSize, a multipart upload otherwise.
// Close completes the object; Abort drops an unfinished upload.
type objectWriter struct {
	ctx         context.Context
	store       *docs.Store
	key         string
	contentType string
	buf         []byte
	uploadID    *string
	parts       []types.CompletedPart
}

func newObjectWriter(ctx context.Context, store *docs.Store, key, contentType string) *objectWriter {
	return &objectWriter{ctx: ctx, store: store, key: key, contentType: contentType}
}

// Write buffers p and uploads a part whenever partSize bytes are waiting.
func (w *objectWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	if len(w.buf) >= partSize {
		if err := w.uploadPart(); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

func (w *objectWriter) uploadPart() error {
	c := w.store.Client()
	if w.uploadID == nil {
		out, err := c.CreateMultipartUpload(w.ctx, &s3.CreateMultipartUploadInput{
			Bucket: aws.String(w.store.Bucket), Key: aws.String(w.key), ContentType: aws.String(w.contentType)})
		if err != nil {
			return fmt.Errorf("start upload of s3://%s/%s: %w", w.store.Bucket, w.key, err)
		}
		w.uploadID = out.UploadId
	}
	n := int32(len(w.parts) + 1)
	out, err := c.UploadPart(w.ctx, &s3.UploadPartInput{
		Bucket: aws.String(w.store.Bucket), Key: aws.String(w.key), UploadId: w.uploadID, PartNumber: aws.Int32(n),
		Body: bytes.NewReader(w.buf), ContentLength: aws.Int64(int64(len(w.buf)))})
	if err != nil {
		return fmt.Errorf("upload part %d of s3://%s/%s: %w", n, w.store.Bucket, w.key, err)
	}
	w.parts = append(w.parts, types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(n)})
	w.buf = w.buf[:0]
	return nil
}

// Close writes what is buffered and completes the object.
func (w *objectWriter) Close() error {
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
func (w *objectWriter) Abort() {
	if w.uploadID == nil {
		return
	}
	_, _ = w.store.Client().AbortMultipartUpload(context.WithoutCancel(w.ctx), &s3.AbortMultipartUploadInput{
		Bucket: aws.String(w.store.Bucket), Key: aws.String(w.key), UploadId: w.uploadID})
}
