package docs

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/ec2rolecreds"
	"github.com/aws/aws-sdk-go-v2/credentials/endpointcreds"
)

// awsConfig is what config.LoadDefaultConfig would give a pod, read from
// the environment only: a pod has no HOME, so no ~/.aws config or
// credentials file and none of the SSO, login or credential_process
// profiles they may name. Not linking the config module keeps its SSO,
// SSO-OIDC and sign-in clients and the shared-file parser out of the
// binary: about 1.5 MiB less idle RSS in each function that stores
// documents (docs/deploy.md, "S3 credentials").
//
// The credentials are the default chain's, in its order: static keys
// (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN);
// else a web identity (IRSA: AWS_WEB_IDENTITY_TOKEN_FILE and
// AWS_ROLE_ARN, AWS_ROLE_SESSION_NAME, through STS in AWS_REGION or the
// bucket's region, AWS_USE_FIPS_ENDPOINT, AWS_ENDPOINT_URL_STS: our own
// client, webIdentity); else the container endpoint
// (EKS Pod Identity or ECS: AWS_CONTAINER_CREDENTIALS_FULL_URI or
// _RELATIVE_URI, with AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE or
// _TOKEN); else the EC2 instance role (IMDS, unless
// AWS_EC2_METADATA_DISABLED=true). AWS_CA_BUNDLE adds trusted roots.
func awsConfig(getenv func(string) string, region string) (aws.Config, error) {
	cfg := aws.Config{
		Region: region,
		// Checksums only where an operation requires them (see Open).
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	}
	if path := getenv("AWS_CA_BUNDLE"); path != "" {
		pem, err := os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("AWS_CA_BUNDLE: %w", err)
		}
		roots, err := x509.SystemCertPool()
		if err != nil {
			roots = x509.NewCertPool()
		}
		if !roots.AppendCertsFromPEM(pem) {
			return cfg, fmt.Errorf("AWS_CA_BUNDLE %s: no PEM certificate", path)
		}
		cfg.HTTPClient = awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
			if tr.TLSClientConfig == nil {
				tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
			}
			tr.TLSClientConfig.RootCAs = roots
		})
	}
	creds, err := credentialChain(getenv, cfg)
	cfg.Credentials = creds
	return cfg, err
}

// Container credential endpoints the SDK accepts over plain HTTP besides
// loopback: ECS and EKS Pod Identity.
var containerHosts = []net.IP{net.ParseIP("169.254.170.2"), net.ParseIP("169.254.170.23"), net.ParseIP("fd00:ec2::23")}

func credentialChain(getenv func(string) string, cfg aws.Config) (aws.CredentialsProvider, error) {
	first := func(names ...string) string {
		for _, n := range names {
			if v := getenv(n); v != "" {
				return v
			}
		}
		return ""
	}
	id, secret := first("AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY"), first("AWS_SECRET_ACCESS_KEY", "AWS_SECRET_KEY")
	switch {
	case id != "" && secret != "":
		return credentials.NewStaticCredentialsProvider(id, secret, getenv("AWS_SESSION_TOKEN")), nil

	case getenv("AWS_WEB_IDENTITY_TOKEN_FILE") != "":
		return newWebIdentity(getenv, cfg, first("AWS_REGION", "AWS_DEFAULT_REGION"))

	case getenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") != "" || getenv("AWS_CONTAINER_CREDENTIALS_FULL_URI") != "":
		endpoint := getenv("AWS_CONTAINER_CREDENTIALS_FULL_URI")
		if rel := getenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"); rel != "" {
			endpoint = "http://169.254.170.2" + rel
		} else if err := allowedContainerEndpoint(endpoint); err != nil {
			return nil, err
		}
		p := endpointcreds.New(endpoint, func(o *endpointcreds.Options) {
			if cfg.HTTPClient != nil {
				o.HTTPClient = cfg.HTTPClient
			}
			o.AuthorizationToken = getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN")
			if file := getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"); file != "" {
				// Read on every refresh: the agent rotates the token.
				o.AuthorizationTokenProvider = endpointcreds.TokenProviderFunc(func() (string, error) {
					b, err := os.ReadFile(file)
					return strings.TrimSpace(string(b)), err
				})
			}
		})
		return aws.NewCredentialsCache(p, func(o *aws.CredentialsCacheOptions) { o.ExpiryWindow = 5 * time.Minute }), nil

	default:
		return aws.NewCredentialsCache(ec2rolecreds.New()), nil
	}
}

// allowedContainerEndpoint refuses a full container-credentials URI over
// plain HTTP to anything but loopback or the ECS/EKS agent addresses, as
// the SDK does.
func allowedContainerEndpoint(endpoint string) error {
	u, err := url.Parse(endpoint)
	if err != nil || u.Hostname() == "" {
		return fmt.Errorf("AWS_CONTAINER_CREDENTIALS_FULL_URI %q: not a URL", endpoint)
	}
	if u.Scheme == "https" {
		return nil
	}
	addrs := []string{u.Hostname()}
	if net.ParseIP(u.Hostname()) == nil {
		if addrs, err = net.LookupHost(u.Hostname()); err != nil {
			return fmt.Errorf("AWS_CONTAINER_CREDENTIALS_FULL_URI %q: %w", endpoint, err)
		}
	}
	for _, a := range addrs {
		ip := net.ParseIP(a)
		ok := ip != nil && ip.IsLoopback()
		for _, h := range containerHosts {
			ok = ok || ip.Equal(h)
		}
		if !ok {
			return fmt.Errorf("AWS_CONTAINER_CREDENTIALS_FULL_URI %q: plain HTTP only to loopback or the ECS/EKS agent", endpoint)
		}
	}
	return nil
}
