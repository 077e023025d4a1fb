package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/qinqing/qinqing/shared/contract/admin"
)

// deliveries runs "qinqing deliveries list": the attempts of webhook-egress
// to notify the portals, newest first.
func deliveries(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) == 0 {
		return usageError{"deliveries needs a subcommand: list"}
	}
	if args[0] != "list" {
		return usageError{fmt.Sprintf("unknown deliveries subcommand %q (want list)", args[0])}
	}
	fs := flag.NewFlagSet("qinqing", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	baseURL := fs.String("url", getenv("QINQING_EGRESS_URL"), "")
	token := fs.String("token", getenv("ADMIN_TOKEN"), "")
	timeout := fs.Duration("timeout", 30*time.Second, "")
	portal := fs.String("portal", "", "")
	status := fs.String("status", "", "")
	webhookID := fs.String("webhook-id", "", "")
	limit := fs.Int("limit", 100, "")
	asJSON := fs.Bool("json", false, "")
	pos, err := parseInterleaved(fs, args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	switch {
	case len(pos) != 0:
		return usageError{fmt.Sprintf("deliveries list takes no arguments, got %q", pos)}
	case *status != "" && *status != "delivered" && *status != "retrying" && *status != "failed":
		return usageError{fmt.Sprintf("--status must be delivered, retrying or failed, got %q", *status)}
	case *limit < 1 || *limit > 1000:
		return usageError{fmt.Sprintf("--limit must be from 1 to 1000, got %d", *limit)}
	case *baseURL == "":
		return errors.New("no endpoint: set QINQING_EGRESS_URL or pass --url (the webhook-egress function's base URL, e.g. http://webhook-egress.qinqing.svc.cluster.local)")
	case strings.TrimSpace(*token) == "":
		return errors.New("no admin token: set ADMIN_TOKEN (the webhook-egress function's ADMIN_TOKEN)")
	}
	c, err := newClient(*baseURL, *token, *timeout)
	if err != nil {
		return err
	}
	c.function = "webhook-egress"
	q := url.Values{}
	for k, v := range map[string]string{"portal": *portal, "status": *status, "webhookId": *webhookID} {
		if v != "" {
			q.Set(k, v)
		}
	}
	q.Set("limit", strconv.Itoa(*limit))
	path := "/deliveries?" + q.Encode()
	body, err := c.do(ctx, "GET", path, 200)
	if err != nil {
		return err
	}
	var l admin.Deliveries
	if err := json.Unmarshal(body, &l); err != nil || l.Items == nil {
		return fmt.Errorf("GET %s: unexpected answer (is the URL the webhook-egress function?): %s", c.endpoint(path), snippet(body))
	}
	if *asJSON {
		return writeIndented(stdout, body)
	}
	if len(l.Items) == 0 {
		fmt.Fprintln(stdout, "no deliveries")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ATTEMPTED\tPORTAL\tSTATUS\tHTTP\tMS\tATTEMPT\tTYPE\tWEBHOOK ID\tERROR")
	for _, d := range l.Items {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.0f\t%d\t%s\t%s\t%s\n", d.AttemptedAt.UTC().Format(time.RFC3339), d.Portal, d.Status,
			orDash(d.HTTPStatus), d.LatencyMs, d.Attempt, d.Type, d.WebhookID, orDash(d.Error))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d delivery attempt(s)\n", len(l.Items))
	return nil
}
