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
	"strconv"
	"strings"
	"testing"
	"time"

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

// stsAnswer is a fake STS: each call gets the next of answers (status and
// body), the last one repeated; calls counts them and forms keeps what
// was posted.
type stsAnswer struct {
	status int
	body   string
}

const stsOK = `<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
<AssumeRoleWithWebIdentityResult><Credentials><AccessKeyId>ASIAWEB</AccessKeyId><SecretAccessKey>websecret</SecretAccessKey>
<SessionToken>websession</SessionToken><Expiration>2099-01-01T00:00:00Z</Expiration></Credentials>
<AssumedRoleUser><Arn>arn:aws-cn:sts::123456789012:assumed-role/qinqing/pod-1</Arn><AssumedRoleId>AROA:pod-1</AssumedRoleId></AssumedRoleUser>
</AssumeRoleWithWebIdentityResult><ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></AssumeRoleWithWebIdentityResponse>`

func stsFault(code, msg string) string {
	return `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>` + code +
		`</Code><Message>` + msg + `</Message></Error><RequestId>2</RequestId></ErrorResponse>`
}

func fakeSTS(t *testing.T, answers ...stsAnswer) (*webIdentity, *[]url.Values) {
	t.Helper()
	var forms []url.Values
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(body))
		if r.Method != http.MethodPost || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
			t.Errorf("STS got %s with Content-Type %q", r.Method, r.Header.Get("Content-Type"))
		}
		a := answers[min(len(forms), len(answers)-1)]
		forms = append(forms, form)
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(a.status)
		_, _ = io.WriteString(w, a.body)
	}))
	t.Cleanup(srv.Close)
	return &webIdentity{client: srv.Client(), endpoint: srv.URL, roleARN: "arn:aws-cn:iam::123456789012:role/qinqing",
		tokenFile: writeFile(t, "token", "jwt-1\n"), attempts: 3, backoff: time.Millisecond}, &forms
}

// The web identity's STS call: the keys, their expiry and account; the
// token read again on every call (the kubelet rotates it); a session name
// of the time when none is set; the errors the SDK's provider retries
// retried, others returned at once with STS's code and message.
func TestWebIdentity(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("Answer", func(t *testing.T) {
		t.Parallel()
		p, forms := fakeSTS(t, stsAnswer{200, stsOK})
		c, err := p.Retrieve(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if c.AccessKeyID != "ASIAWEB" || c.SecretAccessKey != "websecret" || c.SessionToken != "websession" || !c.CanExpire ||
			!c.Expires.Equal(time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)) || c.AccountID != "123456789012" {
			t.Fatalf("got %+v", c)
		}
		f := (*forms)[0]
		if f.Get("Action") != "AssumeRoleWithWebIdentity" || f.Get("Version") != "2011-06-15" || f.Get("WebIdentityToken") != "jwt-1" ||
			f.Get("RoleArn") != p.roleARN {
			t.Fatalf("STS got %v", f)
		}
		if _, err := strconv.ParseInt(f.Get("RoleSessionName"), 10, 64); err != nil {
			t.Fatalf("default session name %q, want the time in nanoseconds", f.Get("RoleSessionName"))
		}
		if err := os.WriteFile(p.tokenFile, []byte("jwt-2"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := p.Retrieve(ctx); err != nil {
			t.Fatal(err)
		}
		if got := (*forms)[1].Get("WebIdentityToken"); got != "jwt-2" {
			t.Fatalf("second call sent token %q, want the rotated jwt-2", got)
		}
	})
	t.Run("Retried", func(t *testing.T) {
		t.Parallel()
		p, forms := fakeSTS(t, stsAnswer{503, "busy"}, stsAnswer{400, stsFault("InvalidIdentityToken", "not yet valid")}, stsAnswer{200, stsOK})
		if c, err := p.Retrieve(ctx); err != nil || c.AccessKeyID != "ASIAWEB" {
			t.Fatalf("got %+v, %v", c, err)
		}
		if len(*forms) != 3 {
			t.Fatalf("%d calls, want 3 (503, InvalidIdentityToken, answer)", len(*forms))
		}
	})
	t.Run("GivesUp", func(t *testing.T) {
		t.Parallel()
		p, forms := fakeSTS(t, stsAnswer{400, stsFault("IDPCommunicationError", "the provider did not answer")})
		_, err := p.Retrieve(ctx)
		if err == nil || !strings.Contains(err.Error(), "IDPCommunicationError") || len(*forms) != 3 {
			t.Fatalf("err %v after %d calls, want IDPCommunicationError after 3", err, len(*forms))
		}
	})
	t.Run("Refused", func(t *testing.T) {
		t.Parallel()
		p, forms := fakeSTS(t, stsAnswer{403, stsFault("AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity")})
		_, err := p.Retrieve(ctx)
		if err == nil || !strings.Contains(err.Error(), "AccessDenied") || !strings.Contains(err.Error(), "Not authorized") ||
			!strings.Contains(err.Error(), p.roleARN) || len(*forms) != 1 {
			t.Fatalf("err %v after %d calls, want AccessDenied with its message and the role, once", err, len(*forms))
		}
	})
	t.Run("Incomplete", func(t *testing.T) {
		t.Parallel()
		p, _ := fakeSTS(t, stsAnswer{200, `<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult/></AssumeRoleWithWebIdentityResponse>`})
		if _, err := p.Retrieve(ctx); err == nil || !strings.Contains(err.Error(), "no complete credentials") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("NoToken", func(t *testing.T) {
		t.Parallel()
		p, forms := fakeSTS(t, stsAnswer{200, stsOK})
		p.tokenFile = filepath.Join(t.TempDir(), "missing")
		if _, err := p.Retrieve(ctx); err == nil || !strings.Contains(err.Error(), "web identity token") || len(*forms) != 0 {
			t.Fatalf("err = %v after %d calls", err, len(*forms))
		}
	})
}

// STS's regional endpoint per partition, as the SDK resolves it.
func TestSTSEndpoint(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		region string
		fips   bool
		want   string
	}{
		{"cn-north-1", false, "https://sts.cn-north-1.amazonaws.com.cn/"},
		{"cn-northwest-1", false, "https://sts.cn-northwest-1.amazonaws.com.cn/"},
		{"us-east-1", false, "https://sts.us-east-1.amazonaws.com/"},
		{"ap-east-1", false, "https://sts.ap-east-1.amazonaws.com/"},
		{"us-gov-west-1", true, "https://sts-fips.us-gov-west-1.amazonaws.com/"},
		{"us-iso-east-1", false, "https://sts.us-iso-east-1.c2s.ic.gov/"},
		{"cn-north-1", true, ""},
		{"", false, ""},
	} {
		got, err := stsEndpoint(c.region, c.fips)
		if got != c.want || (err == nil) != (c.want != "") {
			t.Errorf("stsEndpoint(%q, %v) = %q, %v; want %q", c.region, c.fips, got, err, c.want)
		}
	}
	// Without AWS_REGION the bucket's region is STS's; AWS_ENDPOINT_URL_STS
	// overrides both.
	e := env{"AWS_WEB_IDENTITY_TOKEN_FILE": "/var/run/token", "AWS_ROLE_ARN": "arn:aws-cn:iam::1:role/r"}
	for _, c := range []struct {
		region, sts, want string
	}{
		{"", "", "https://sts.cn-northwest-1.amazonaws.com.cn/"},
		{"cn-north-1", "", "https://sts.cn-north-1.amazonaws.com.cn/"},
		{"cn-north-1", "https://sts.internal.example/", "https://sts.internal.example/"},
	} {
		e["AWS_REGION"], e["AWS_ENDPOINT_URL_STS"] = c.region, c.sts
		p, err := webIdentityFrom(e.get, aws.Config{Region: "cn-northwest-1"}, e["AWS_REGION"])
		if err != nil || p.endpoint != c.want {
			t.Errorf("AWS_REGION %q AWS_ENDPOINT_URL_STS %q: endpoint %v, %v; want %s", c.region, c.sts, p, err, c.want)
		}
	}
}
