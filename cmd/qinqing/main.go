// Command qinqing is the operators' tool for qinqing. It talks to the
// admin endpoints of the dead-letter and webhook-egress functions, so
// nobody needs curl:
//
//	qinqing deadletters list [--status pending|replayed] [--json]
//	qinqing deadletters replay <id>
//	qinqing deliveries list [--portal P] [--status delivered|retrying|failed] [--webhook-id ID] [--limit N] [--json]
//
// The endpoint comes from --url or QINQING_DEADLETTER_URL (dead letters)
// or QINQING_EGRESS_URL (deliveries), the token from ADMIN_TOKEN (or
// --token, which other users can see in the process list).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/qinqing/qinqing/shared/contract/admin"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // the request failed or was refused
	exitUsage = 2 // the command line is wrong
)

const usage = `Usage:
  qinqing deadletters list [--status pending|replayed] [--json]
  qinqing deadletters replay <id>
  qinqing deliveries list [--portal P] [--status delivered|retrying|failed] [--webhook-id ID] [--limit N] [--json]

Flags (every command):
  --url URL        base URL of the dead-letter function (default $QINQING_DEADLETTER_URL),
                   or of webhook-egress for deliveries (default $QINQING_EGRESS_URL)
  --token TOKEN    admin token (default $ADMIN_TOKEN; prefer the variable: flags are visible in ps)
  --timeout DUR    how long to wait for an answer (default 30s)
`

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// usageError is a wrong command line: exit 2 with the usage text.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// run is the whole command, testable: it returns the exit code.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	err := dispatch(ctx, args, getenv, stdout)
	var ue usageError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stdout, usage)
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "qinqing: %s\n\n%s", ue.msg, usage)
		return exitUsage
	default:
		fmt.Fprintf(stderr, "qinqing: %v\n", err)
		return exitError
	}
}

func dispatch(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) == 0 {
		return usageError{"no command given"}
	}
	if args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		return flag.ErrHelp
	}
	if args[0] == "deliveries" {
		return deliveries(ctx, args[1:], getenv, stdout)
	}
	if args[0] != "deadletters" {
		return usageError{fmt.Sprintf("unknown command %q", args[0])}
	}
	if len(args) < 2 {
		return usageError{"deadletters needs a subcommand: list or replay"}
	}
	fs := flag.NewFlagSet("qinqing", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	baseURL := fs.String("url", getenv("QINQING_DEADLETTER_URL"), "")
	token := fs.String("token", getenv("ADMIN_TOKEN"), "")
	timeout := fs.Duration("timeout", 30*time.Second, "")
	status := fs.String("status", "", "")
	asJSON := fs.Bool("json", false, "")
	sub := args[1]
	pos, err := parseInterleaved(fs, args[2:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	c, err := newClient(*baseURL, *token, *timeout)
	if err != nil {
		return err
	}
	switch sub {
	case "list":
		if len(pos) != 0 {
			return usageError{fmt.Sprintf("list takes no arguments, got %q", pos)}
		}
		if *status != "" && *status != "pending" && *status != "replayed" {
			return usageError{fmt.Sprintf("--status must be pending or replayed, got %q", *status)}
		}
		return c.list(ctx, stdout, *status, *asJSON)
	case "replay":
		if len(pos) != 1 || pos[0] == "" {
			return usageError{"replay needs exactly one dead letter id (see: qinqing deadletters list)"}
		}
		if *status != "" {
			return usageError{"--status applies to list only"}
		}
		return c.replay(ctx, stdout, pos[0], *asJSON)
	default:
		return usageError{fmt.Sprintf("unknown deadletters subcommand %q (want list or replay)", sub)}
	}
}

// parseInterleaved parses flags that may come before or after the
// positional arguments and returns the positional ones.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// client calls the dead-letter function's admin endpoints.
type client struct {
	base  *url.URL
	token string
	http  *http.Client
	// function is the function the endpoint belongs to, for the hints of
	// error messages ("" means dead-letter).
	function string
}

func newClient(base, token string, timeout time.Duration) (*client, error) {
	if base == "" {
		return nil, errors.New("no endpoint: set QINQING_DEADLETTER_URL or pass --url (the dead-letter function's base URL, e.g. http://dead-letter.qinqing.svc.cluster.local)")
	}
	u, err := url.Parse(strings.TrimRight(base, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("endpoint %q is not an http(s) URL", base)
	}
	token = strings.TrimSpace(token)
	if token == "" {
		return nil, errors.New("no admin token: set ADMIN_TOKEN (the dead-letter function's ADMIN_TOKEN)")
	}
	return &client{base: u, token: token, http: &http.Client{Timeout: timeout}}, nil
}

func (c *client) list(ctx context.Context, out io.Writer, status string, asJSON bool) error {
	path := "/deadletters"
	if status != "" {
		path += "?status=" + url.QueryEscape(status)
	}
	body, err := c.do(ctx, http.MethodGet, path, http.StatusOK)
	if err != nil {
		return err
	}
	var l struct {
		Items []json.RawMessage `json:"items"`
	}
	if err := json.Unmarshal(body, &l); err != nil || l.Items == nil {
		return fmt.Errorf("GET %s: unexpected answer (is the URL the dead-letter function?): %s", c.endpoint(path), snippet(body))
	}
	if asJSON {
		return writeIndented(out, body)
	}
	items := make([]admin.DeadLetter, len(l.Items))
	for i, raw := range l.Items {
		if err := json.Unmarshal(raw, &items[i]); err != nil {
			return fmt.Errorf("GET %s: item %d: %v", c.endpoint(path), i, err)
		}
	}
	if len(items) == 0 {
		if status != "" {
			fmt.Fprintf(out, "no %s dead letters\n", status)
		} else {
			fmt.Fprintln(out, "no dead letters")
		}
		return nil
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tRECEIVED\tSTATUS\tCODE\tTYPE\tSOURCE\tEVENT ID\tERROR DEST")
	for _, it := range items {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", it.ID, it.ReceivedAt.UTC().Format(time.RFC3339), it.Status,
			orDash(it.ErrorCode), it.Event.Type, it.Event.Source, it.Event.ID, orDash(it.ErrorDest))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(out, "%d dead letter(s)\n", len(items))
	return nil
}

func (c *client) replay(ctx context.Context, out io.Writer, id string, asJSON bool) error {
	path := "/deadletters/" + url.PathEscape(id) + "/replay"
	body, err := c.do(ctx, http.MethodPost, path, http.StatusAccepted)
	if err != nil {
		return err
	}
	if asJSON {
		return writeIndented(out, body)
	}
	var it admin.DeadLetter
	if err := json.Unmarshal(body, &it); err != nil {
		return fmt.Errorf("POST %s: unexpected answer: %s", c.endpoint(path), snippet(body))
	}
	fmt.Fprintf(out, "replayed %s: %s %s from %s (status %s, replays %d)\n",
		it.ID, it.Event.Type, it.Event.ID, it.Event.Source, it.Status, it.Replays)
	return nil
}

// do performs one admin request and returns the body of a want answer;
// any other answer becomes an error that says what to do about it.
func (c *client) do(ctx context.Context, method, path string, want int) ([]byte, error) {
	endpoint := c.endpoint(path)
	req, err := http.NewRequestWithContext(ctx, method, endpoint, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %v", method, endpoint, unwrapURLError(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return nil, fmt.Errorf("%s %s: reading the answer: %v", method, endpoint, err)
	}
	if resp.StatusCode == want {
		return body, nil
	}
	var p struct {
		Type   string `json:"type"`
		Detail string `json:"detail"`
		Title  string `json:"title"`
	}
	isProblem := strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json") && json.Unmarshal(body, &p) == nil
	msg := p.Detail
	if msg == "" {
		msg = p.Title
	}
	if !isProblem || msg == "" {
		msg = snippet(body)
	}
	hint, fn := "", c.function
	if fn == "" {
		fn = "dead-letter"
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		hint = fmt.Sprintf(" (check ADMIN_TOKEN: it must equal the %s function's ADMIN_TOKEN)", fn)
	case resp.StatusCode == http.StatusNotFound && (!isProblem || p.Type == "urn:qinqing:problem:no-route"):
		hint = fmt.Sprintf(" (the admin endpoints are off while the %s function has no ADMIN_TOKEN, or the URL is not the %[1]s function)", fn)
	case resp.StatusCode == http.StatusBadGateway:
		hint = " (nothing changed: retry once the broker is back)"
	}
	return nil, fmt.Errorf("%s %s: %s: %s%s", method, endpoint, resp.Status, msg, hint)
}

func (c *client) endpoint(path string) string {
	return c.base.String() + path
}

func writeIndented(out io.Writer, body []byte) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, body, "", "  "); err != nil {
		return err
	}
	buf.WriteByte('\n')
	_, err := out.Write(buf.Bytes())
	return err
}

func orDash[T any](v *T) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprint(*v)
}

// snippet shortens a body for an error message.
func snippet(b []byte) string {
	s := strings.Join(strings.Fields(string(b)), " ")
	if s == "" {
		return "(empty answer)"
	}
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// unwrapURLError drops the url.Error wrapping (its method and URL are
// already in the message).
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
