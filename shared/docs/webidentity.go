package docs

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
)

// webIdentity is the credential source of IRSA: it trades the projected
// service-account token (read again on every refresh: the kubelet rotates
// it) for a role's temporary keys with STS AssumeRoleWithWebIdentity.
//
// It does what the SDK's stscreds.WebIdentityRoleProvider does with the
// STS client, without linking that client: its endpoint tables, schemas
// and protocol code made every function that stores documents about
// 1 ms of CPU slower to its first reply on a cold start (README, Speed),
// for a call a pod makes once an hour. The call is the STS Query API's:
// an unsigned form POST to the regional endpoint, answered in XML. The
// SDK's behaviour is kept where it matters: the session name defaults to
// the time in nanoseconds; InvalidIdentityToken (a token STS cannot yet
// verify), IDPCommunicationError, throttling, 5xx and network errors are
// retried (3 attempts in all, with jittered exponential backoff); any
// other error is returned with STS's code and message.
type webIdentity struct {
	client    aws.HTTPClient
	endpoint  string // STS base URL
	roleARN   string
	session   string // "" for the time in nanoseconds
	tokenFile string
	attempts  int
	backoff   time.Duration // the first retry's; doubled after each, ±50 %
}

// Retrieve implements aws.CredentialsProvider.
func (p *webIdentity) Retrieve(ctx context.Context) (aws.Credentials, error) {
	token, err := os.ReadFile(p.tokenFile)
	if err != nil {
		return aws.Credentials{}, fmt.Errorf("web identity token: %w", err)
	}
	session := p.session
	if session == "" {
		session = strconv.FormatInt(time.Now().UnixNano(), 10)
	}
	form := url.Values{
		"Action":           {"AssumeRoleWithWebIdentity"},
		"Version":          {"2011-06-15"},
		"RoleArn":          {p.roleARN},
		"RoleSessionName":  {session},
		"WebIdentityToken": {strings.TrimSpace(string(token))},
	}.Encode()
	delay := p.backoff
	for attempt := 1; ; attempt++ {
		creds, err := p.call(ctx, form)
		if err == nil || attempt >= p.attempts || !retryableSTS(err) || ctx.Err() != nil {
			if err != nil {
				return aws.Credentials{}, fmt.Errorf("STS AssumeRoleWithWebIdentity for %s: %w", p.roleARN, err)
			}
			return creds, nil
		}
		wait := delay/2 + rand.N(delay) // delay ± 50 %
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return aws.Credentials{}, fmt.Errorf("STS AssumeRoleWithWebIdentity for %s: %w", p.roleARN, ctx.Err())
		}
		delay *= 2
	}
}

// stsError is an error response of STS (or a failure without one: Code
// empty, Status the HTTP status).
type stsError struct {
	Status  int
	Code    string
	Message string
}

func (e *stsError) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("HTTP %d: %s", e.Status, e.Message)
	}
	return fmt.Sprintf("%s (HTTP %d): %s", e.Code, e.Status, e.Message)
}

// retryableSTS reports the errors the SDK's provider retries: network
// failures, 5xx, throttling, and the identity provider not answering STS
// or STS not yet trusting a fresh token.
func retryableSTS(err error) bool {
	var se *stsError
	if !errors.As(err, &se) {
		var ne net.Error
		return errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)
	}
	switch se.Code {
	case "InvalidIdentityToken", "IDPCommunicationError", "Throttling", "ThrottlingException", "RequestLimitExceeded",
		"TooManyRequestsException", "RequestThrottled", "RequestThrottledException":
		return true
	}
	return se.Status >= 500 || se.Status == http.StatusTooManyRequests
}

// call makes one AssumeRoleWithWebIdentity request.
func (p *webIdentity) call(ctx context.Context, form string) (aws.Credentials, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.endpoint, strings.NewReader(form))
	if err != nil {
		return aws.Credentials{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	resp, err := p.client.Do(req)
	if err != nil {
		return aws.Credentials{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return aws.Credentials{}, err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error struct{ Code, Message string }
		}
		if xml.Unmarshal(body, &e) != nil || e.Error.Code == "" {
			return aws.Credentials{}, &stsError{Status: resp.StatusCode, Message: strings.TrimSpace(string(body[:min(len(body), 200)]))}
		}
		return aws.Credentials{}, &stsError{Status: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message}
	}
	var out struct {
		Result struct {
			Credentials struct {
				AccessKeyID     string `xml:"AccessKeyId"`
				SecretAccessKey string
				SessionToken    string
				Expiration      time.Time
			}
			AssumedRoleUser struct{ Arn string }
		} `xml:"AssumeRoleWithWebIdentityResult"`
	}
	if err := xml.Unmarshal(body, &out); err != nil {
		return aws.Credentials{}, fmt.Errorf("reading the answer: %w", err)
	}
	c := out.Result.Credentials
	if c.AccessKeyID == "" || c.SecretAccessKey == "" || c.SessionToken == "" || c.Expiration.IsZero() {
		return aws.Credentials{}, errors.New("the answer has no complete credentials")
	}
	creds := aws.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken,
		Source: "WebIdentityCredentials", CanExpire: true, Expires: c.Expiration}
	// arn:aws:sts::123456789012:assumed-role/role/session
	if parts := strings.Split(out.Result.AssumedRoleUser.Arn, ":"); len(parts) > 4 {
		creds.AccountID = parts[4]
	}
	return creds, nil
}

// stsEndpoint is STS's regional endpoint for region, as the SDK resolves
// it: the partition's DNS suffix (amazonaws.com.cn for cn-north-1 and
// cn-northwest-1), sts-fips where FIPS endpoints are asked for.
func stsEndpoint(region string, fips bool) (string, error) {
	if region == "" {
		return "", errors.New("no region for STS: set AWS_REGION")
	}
	suffix := "amazonaws.com"
	switch {
	case strings.HasPrefix(region, "cn-"):
		suffix = "amazonaws.com.cn"
	case strings.HasPrefix(region, "us-iso-"):
		suffix = "c2s.ic.gov"
	case strings.HasPrefix(region, "us-isob-"):
		suffix = "sc2s.sgov.gov"
	case strings.HasPrefix(region, "eu-isoe-"):
		suffix = "cloud.adc-e.uk"
	case strings.HasPrefix(region, "us-isof-"):
		suffix = "csp.hci.ic.gov"
	}
	host := "sts"
	if fips {
		if suffix != "amazonaws.com" {
			return "", fmt.Errorf("no FIPS endpoint of STS in %s: set AWS_ENDPOINT_URL_STS", region)
		}
		host = "sts-fips"
	}
	return "https://" + host + "." + region + "." + suffix + "/", nil
}

// newWebIdentity is the provider for the web identity in getenv, cached
// (refreshed 5 minutes before its keys expire). cfg gives its HTTP client
// (AWS_CA_BUNDLE) and the bucket's region, used when AWS_REGION is unset.
func newWebIdentity(getenv func(string) string, cfg aws.Config, region string) (aws.CredentialsProvider, error) {
	p, err := webIdentityFrom(getenv, cfg, region)
	if err != nil {
		return nil, err
	}
	return aws.NewCredentialsCache(p, func(o *aws.CredentialsCacheOptions) { o.ExpiryWindow = 5 * time.Minute }), nil
}

// webIdentityFrom is newWebIdentity's provider, uncached.
func webIdentityFrom(getenv func(string) string, cfg aws.Config, region string) (*webIdentity, error) {
	role := getenv("AWS_ROLE_ARN")
	if role == "" {
		return nil, fmt.Errorf("AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not")
	}
	if region == "" {
		region = cfg.Region
	}
	endpoint := getenv("AWS_ENDPOINT_URL_STS")
	if endpoint == "" {
		var err error
		if endpoint, err = stsEndpoint(region, strings.EqualFold(getenv("AWS_USE_FIPS_ENDPOINT"), "true")); err != nil {
			return nil, err
		}
	}
	var client aws.HTTPClient = awshttp.NewBuildableClient()
	if cfg.HTTPClient != nil {
		client = cfg.HTTPClient
	}
	return &webIdentity{client: client, endpoint: endpoint, roleARN: role, session: getenv("AWS_ROLE_SESSION_NAME"),
		tokenFile: getenv("AWS_WEB_IDENTITY_TOKEN_FILE"), attempts: 3, backoff: 200 * time.Millisecond}, nil
}
