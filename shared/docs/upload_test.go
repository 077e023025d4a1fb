package docs_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/qinqing/qinqing/shared/docs"
	"github.com/qinqing/qinqing/shared/docs/s3test"
	"github.com/qinqing/qinqing/shared/event"
)

// TestPresignUploadsSignsSize: each URL signs the declared content type
// and size (X-Amz-SignedHeaders has content-length), so an S3 server that
// verifies SigV4 refuses any other body size. The test server (gofakes3)
// does not verify signatures; TestPresignedSizeEnforcedByVersitygw does.
func TestPresignUploadsSignsSize(t *testing.T) {
	t.Parallel()
	_, store := s3test.New(t)
	ups, err := store.PresignUploads(context.Background(), "forums/F1/signups/S1", []event.Document{
		{FileName: "营业执照.pdf", ContentType: "application/pdf", SizeBytes: 1000},
		{FileName: "photo.png", ContentType: "image/png", SizeBytes: 20 << 20},
	})
	if err != nil || len(ups) != 2 {
		t.Fatalf("PresignUploads = %v, %v", ups, err)
	}
	for i, want := range []string{"forums/F1/signups/S1/1-营业执照.pdf", "forums/F1/signups/S1/2-photo.png"} {
		u := ups[i]
		if u.Key != want {
			t.Errorf("key %d = %q, want %q", i, u.Key, want)
		}
		q, err := url.Parse(u.URL)
		if err != nil {
			t.Fatal(err)
		}
		signed := strings.Split(q.Query().Get("X-Amz-SignedHeaders"), ";")
		if !contains(signed, "content-length") || !contains(signed, "content-type") || !contains(signed, "host") {
			t.Errorf("upload %d signs %v, want content-length, content-type and host", i, signed)
		}
		if d := time.Until(u.ExpiresAt); d < 14*time.Minute || d > 15*time.Minute {
			t.Errorf("upload %d expires in %v, want 15 minutes", i, d)
		}
	}
	if _, err := store.PresignPut(context.Background(), "k", "application/pdf", "k", 0); err == nil {
		t.Error("PresignPut signed a zero size")
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// TestPresignedSizeEnforcedByVersitygw runs the presigned PUT against
// versitygw, an S3 server that verifies SigV4 as AWS S3 and MinIO do: the
// declared size is accepted, a larger or smaller body and another content
// type are refused and leave the object as it was. make test builds
// versitygw (hack/versitygw.sh) and names it by VERSITYGW; a plain go test
// finds it on PATH or skips.
func TestPresignedSizeEnforcedByVersitygw(t *testing.T) {
	bin := os.Getenv("VERSITYGW")
	if bin == "" {
		var err error
		if bin, err = exec.LookPath("versitygw"); err != nil {
			t.Skip("versitygw not on PATH and VERSITYGW unset")
		}
	}
	dir := t.TempDir()
	const bucket = "qinqing-vgw"
	if err := os.Mkdir(filepath.Join(dir, bucket), 0o755); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, "--access", s3test.AccessKey, "--secret", s3test.SecretKey, "--port", addr, "posix", dir)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	for deadline := time.Now().Add(20 * time.Second); ; {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("versitygw did not listen on %s:\n%s", addr, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Setenv("AWS_ACCESS_KEY_ID", s3test.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", s3test.SecretKey)
	ctx := context.Background()
	store, err := docs.Open(ctx, docs.S3{Bucket: bucket, Endpoint: "http://" + addr, Region: "us-east-1", ForcePathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	const size = 1000
	up, err := store.PresignPut(ctx, "forums/F1/signups/S1/1-a.pdf", "application/pdf", "a.pdf", size)
	if err != nil {
		t.Fatal(err)
	}
	put := func(body []byte, contentType string) int {
		t.Helper()
		req, err := http.NewRequest(http.MethodPut, up.URL, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", contentType)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return -1 // the server closed the connection on a refused body
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := put(bytes.Repeat([]byte("a"), size), "application/pdf"); st != http.StatusOK {
		t.Fatalf("PUT of the declared %d bytes: status %d, want 200\n%s", size, st, out.String())
	}
	for _, tc := range []struct {
		name, contentType string
		n                 int
	}{
		{"Larger", "application/pdf", size + 1},
		{"25MiB", "application/pdf", 25 << 20},
		{"Smaller", "application/pdf", size - 1},
		{"OtherContentType", "image/png", size},
	} {
		if st := put(bytes.Repeat([]byte("b"), tc.n), tc.contentType); st >= 200 && st < 300 {
			t.Errorf("%s: PUT of %d bytes as %s: status %d, want a refusal", tc.name, tc.n, tc.contentType, st)
		}
	}
	got, err := store.Get(ctx, up.Key)
	if err != nil || !bytes.Equal(got, bytes.Repeat([]byte("a"), size)) {
		t.Fatalf("object after refused PUTs: %d bytes, %v; want the first %d", len(got), err, size)
	}
	fmt.Fprintln(os.Stderr, "versitygw: declared size accepted; larger, smaller and retyped bodies refused")
}
