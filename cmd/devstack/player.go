package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/qinqing/qinqing/shared/contract"
	"github.com/qinqing/qinqing/shared/runtime"
)

// line is one entry of a week file (cmd/devstack/week/*.jsonl): a
// CloudEvent for the broker, a signed portal webhook for webhook-ingress,
// or a note printed as a heading.
type line struct {
	Note    string          `json:"note"`
	Type    string          `json:"type"`
	Source  string          `json:"source"`
	ID      string          `json:"id"`
	Time    string          `json:"time"`
	Data    json.RawMessage `json:"data"`
	Webhook *struct {
		Portal string          `json:"portal"`
		ID     string          `json:"id"`
		Type   string          `json:"type"`
		Data   json.RawMessage `json:"data"`
	} `json:"webhook"`
}

// player replays the sample week through the broker and prints what
// happened after each event.
type player struct {
	broker      *broker
	brokerURL   string
	webhookURL  string
	portalKey   []byte
	receiver    *receiver
	seenUpdates int
	pool        *pgxpool.Pool
	out         io.Writer
	client      *http.Client
	seenEvents  int
	pendingRun  []string // summary lines of a run of same-type inputs
	runType     string
	runCount    int
	runOutcomes map[string]int
}

func readWeek(dir string) ([]line, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	var lines []line
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		n := 0
		for sc.Scan() {
			n++
			text := strings.TrimSpace(sc.Text())
			if text == "" || strings.HasPrefix(text, "//") {
				continue
			}
			var l line
			if err := json.Unmarshal([]byte(text), &l); err != nil {
				fh.Close()
				return nil, fmt.Errorf("%s:%d: %w", f, n, err)
			}
			lines = append(lines, l)
		}
		fh.Close()
		if err := sc.Err(); err != nil {
			return nil, err
		}
	}
	return lines, nil
}

func (p *player) play(ctx context.Context, lines []line) error {
	for _, l := range lines {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		switch {
		case l.Note != "":
			p.flushRun()
			fmt.Fprintf(p.out, "\n── %s\n", l.Note)
			continue
		case l.Webhook != nil:
			if err := p.sendWebhook(ctx, l); err != nil {
				return err
			}
		default:
			if err := p.sendEvent(ctx, l); err != nil {
				return err
			}
		}
		p.settle(ctx)
		p.report(l)
	}
	p.flushRun()
	return nil
}

func (p *player) sendEvent(ctx context.Context, l line) error {
	ev := cloudevents.NewEvent()
	ev.SetType(l.Type)
	ev.SetSource(l.Source)
	ev.SetID(l.ID)
	if l.Time != "" {
		t, err := time.Parse(time.RFC3339, l.Time)
		if err != nil {
			return fmt.Errorf("event %s: time: %w", l.ID, err)
		}
		ev.SetTime(t)
	}
	_ = ev.SetData(cloudevents.ApplicationJSON, []byte(l.Data))
	return runtime.Send(ctx, p.client, p.brokerURL, &ev)
}

// sendWebhook signs the body as a portal would (Standard Webhooks).
func (p *player) sendWebhook(ctx context.Context, l line) error {
	if p.webhookURL == "" {
		fmt.Fprintf(p.out, "  (webhook-ingress is not running; skipped webhook %s)\n", l.Webhook.ID)
		return nil
	}
	body, _ := json.Marshal(map[string]any{"type": l.Webhook.Type, "data": l.Webhook.Data})
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	mac := hmac.New(sha256.New, p.portalKey)
	mac.Write([]byte(l.Webhook.ID + "." + ts + "." + string(body)))
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, p.webhookURL+"/webhooks/"+l.Webhook.Portal, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("webhook-id", l.Webhook.ID)
	req.Header.Set("webhook-timestamp", ts)
	req.Header.Set("webhook-signature", "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		fmt.Fprintf(p.out, "  webhook %s refused: %d %s\n", l.Webhook.ID, resp.StatusCode, shortJSON(msg, 200))
	}
	return nil
}

// settle waits until the broker is idle and the outbox has nothing due,
// so each event's consequences are printed with it.
func (p *player) settle(ctx context.Context) {
	deadline := time.Now().Add(15 * time.Second)
	calm := 0
	for calm < 2 && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(15 * time.Millisecond)
		var pending int
		_ = p.pool.QueryRow(ctx, `SELECT count(*) FROM qinqing.outbox WHERE delivered_at IS NULL AND attempts < 3`).Scan(&pending)
		if pending == 0 && p.broker.idle() {
			calm++
		} else {
			calm = 0
		}
	}
}

// report prints the input and every event that followed from it. Runs of
// four or more inputs of one type are folded into one line with counts.
func (p *player) report(l line) {
	obs := p.broker.observedSince(p.seenEvents)
	p.seenEvents += len(obs)
	var input string
	if l.Webhook != nil {
		input = fmt.Sprintf("webhook %s → %s", l.Webhook.Portal, l.Webhook.Type)
	} else {
		input = l.Type
	}
	var follow []observed
	inputFailed := ""
	for _, o := range obs {
		if l.Webhook == nil && o.Event.ID() == l.ID && o.Event.Source() == l.Source {
			if len(o.Failed) > 0 {
				inputFailed = "  ✗ failed at " + strings.Join(o.Failed, ", ") + " → dead-letter"
			}
			continue
		}
		if o.Event.Type() == contract.TypePortalsNotified {
			continue // webhook-egress's reply; its deliveries are shown below
		}
		follow = append(follow, o)
	}
	if input != p.runType {
		p.flushRun()
		p.runType = input
		p.runOutcomes = map[string]int{}
	}
	p.runCount++
	lines := []string{fmt.Sprintf("▶ %s  %s%s", hhmm(l.Time), input+" "+briefOf(l), inputFailed)}
	for _, o := range follow {
		p.runOutcomes[o.Event.Type()]++
		status := ""
		if len(o.Failed) > 0 {
			status = "  ✗ failed at " + strings.Join(o.Failed, ", ")
		}
		lines = append(lines, fmt.Sprintf("    ↳ %s %s%s", o.Event.Type(), shortJSON(o.Event.Data(), 150), status))
	}
	if p.receiver != nil {
		updates := p.receiver.since(p.seenUpdates)
		p.seenUpdates += len(updates)
		for _, d := range updates {
			p.runOutcomes["✉ "+d.Portal]++
			lines = append(lines, "    "+d.String())
		}
	}
	p.pendingRun = append(p.pendingRun, lines...)
}

func (p *player) flushRun() {
	if p.runCount >= 4 {
		keys := make([]string, 0, len(p.runOutcomes))
		for k := range p.runOutcomes {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = fmt.Sprintf("%d × %s", p.runOutcomes[k], k)
		}
		fmt.Fprintf(p.out, "▶ %d × %s\n    ↳ %s\n", p.runCount, p.runType, strings.Join(parts, ", "))
	} else {
		for _, s := range p.pendingRun {
			fmt.Fprintln(p.out, s)
		}
	}
	p.pendingRun, p.runCount, p.runType = nil, 0, ""
}

func hhmm(t string) string {
	v, err := time.Parse(time.RFC3339, t)
	if err != nil {
		return "          "
	}
	return v.Format("01-02 15:04")
}

// briefOf picks a few telling fields of an input event.
func briefOf(l line) string {
	data := l.Data
	if l.Webhook != nil {
		data = l.Webhook.Data
	}
	var m map[string]any
	if json.Unmarshal(data, &m) != nil {
		return ""
	}
	var parts []string
	for _, k := range []string{"job", "forumId", "appealId", "mode", "policyId", "honour", "tradeId", "licenceNo", "nominationId", "year", "satisfaction"} {
		if v, ok := m[k]; ok && v != "" {
			parts = append(parts, fmt.Sprintf("%s=%v", k, v))
		}
	}
	if e, ok := m["enterprise"].(map[string]any); ok {
		parts = append(parts, fmt.Sprint(e["name"]))
	}
	return strings.Join(parts, " ")
}
