package docs

import (
	"context"
	"encoding/pem"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// env is an environment for awsConfig.
type env map[string]string

func (e env) get(k string) string { return e[k] }

func retrieve(t *testing.T, e env) aws.Credentials {
	t.Helper()
	cfg, err := awsConfig(e.get, "cn-north-1")
	if err != nil {
		t.Fatal(err)
	}
	c, err := cfg.Credentials.Retrieve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCredentialChain: each source of the default chain a pod can have,
// against a real SDK provider and, for STS and the container endpoint, a
// local server that answers as AWS does.
func TestCredentialChain(t *testing.T) {
	t.Parallel()
	t.Run("StaticKeys", func(t *testing.T) {
		t.Parallel()
		c := retrieve(t, env{"AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_SESSION_TOKEN": "tok",
			"AWS_WEB_IDENTITY_TOKEN_FILE": "/nonexistent"})
		if c.AccessKeyID != "AKID" || c.SecretAccessKey != "secret" || c.SessionToken != "tok" {
			t.Fatalf("got %+v", c)
		}
	})
	t.Run("WebIdentity", func(t *testing.T) {
		t.Parallel()
		var form url.Values
		stsServer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			form, _ = url.ParseQuery(string(body))
			w.Header().Set("Content-Type", "text/xml")
			_, _ = io.WriteString(w, `<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
<AssumeRoleWithWebIdentityResult><Credentials><AccessKeyId>ASIAWEB</AccessKeyId><SecretAccessKey>websecret</SecretAccessKey>
<SessionToken>websession</SessionToken><Expiration>2099-01-01T00:00:00Z</Expiration></Credentials></AssumeRoleWithWebIdentityResult>
<ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></AssumeRoleWithWebIdentityResponse>`)
		}))
		t.Cleanup(stsServer.Close)
		c := retrieve(t, env{"AWS_WEB_IDENTITY_TOKEN_FILE": writeFile(t, "token", "jwt-from-the-kubelet"),
			"AWS_ROLE_ARN": "arn:aws-cn:iam::1:role/qinqing", "AWS_ROLE_SESSION_NAME": "pod-1", "AWS_ENDPOINT_URL_STS": stsServer.URL,
			"AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://127.0.0.1:1/unused"})
		if c.AccessKeyID != "ASIAWEB" || c.SecretAccessKey != "websecret" || c.SessionToken != "websession" {
			t.Fatalf("got %+v", c)
		}
		if form.Get("Action") != "AssumeRoleWithWebIdentity" || form.Get("WebIdentityToken") != "jwt-from-the-kubelet" ||
			form.Get("RoleArn") != "arn:aws-cn:iam::1:role/qinqing" || form.Get("RoleSessionName") != "pod-1" {
			t.Fatalf("STS got %v", form)
		}
	})
	t.Run("WebIdentityWithoutRole", func(t *testing.T) {
		t.Parallel()
		if _, err := awsConfig(env{"AWS_WEB_IDENTITY_TOKEN_FILE": "/var/run/token"}.get, "us-east-1"); err == nil || !strings.Contains(err.Error(), "AWS_ROLE_ARN") {
			t.Fatalf("err = %v, want one naming AWS_ROLE_ARN", err)
		}
	})
	t.Run("ContainerEndpoint", func(t *testing.T) {
		t.Parallel()
		var auth string
		agent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			auth = r.Header.Get("Authorization")
			_, _ = io.WriteString(w, `{"AccessKeyId":"ASIAPOD","SecretAccessKey":"podsecret","Token":"podsession","Expiration":"2099-01-01T00:00:00Z"}`)
		}))
		t.Cleanup(agent.Close)
		c := retrieve(t, env{"AWS_CONTAINER_CREDENTIALS_FULL_URI": agent.URL + "/v1/credentials",
			"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": writeFile(t, "eks-pod-identity-token", "pod-token\n")})
		if c.AccessKeyID != "ASIAPOD" || c.SessionToken != "podsession" || auth != "pod-token" {
			t.Fatalf("got %+v, Authorization %q", c, auth)
		}
	})
	t.Run("ContainerEndpointElsewhere", func(t *testing.T) {
		t.Parallel()
		if _, err := awsConfig(env{"AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://10.1.2.3/creds"}.get, "us-east-1"); err == nil {
			t.Fatal("plain HTTP to 10.1.2.3 accepted")
		}
	})
}

// TestCABundle: AWS_CA_BUNDLE makes an S3 endpoint with a private CA
// trusted; without it the same call fails.
func TestCABundle(t *testing.T) {
	t.Parallel()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"1"`)
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes
	srv.StartTLS()
	t.Cleanup(srv.Close)
	bundle := writeFile(t, "ca.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})))
	put := func(e env) error {
		cfg, err := awsConfig(e.get, "us-east-1")
		if err != nil {
			return err
		}
		client := s3.NewFromConfig(cfg, func(o *s3.Options) { o.BaseEndpoint = aws.String(srv.URL); o.UsePathStyle = true })
		_, err = client.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("b"), Key: aws.String("k"), Body: strings.NewReader("x")})
		return err
	}
	keys := env{"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"}
	if err := put(keys); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("without AWS_CA_BUNDLE: %v, want a certificate error", err)
	}
	keys["AWS_CA_BUNDLE"] = bundle
	if err := put(keys); err != nil {
		t.Fatalf("with AWS_CA_BUNDLE: %v", err)
	}
	keys["AWS_CA_BUNDLE"] = writeFile(t, "empty.pem", "not a certificate")
	if _, err := awsConfig(keys.get, "us-east-1"); err == nil {
		t.Fatal("a bundle without certificates accepted")
	}
}
