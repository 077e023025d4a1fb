package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/qinqing/qinqing/shared/docs/s3test"
	"github.com/qinqing/qinqing/shared/event"
	"github.com/qinqing/qinqing/shared/postgres/pgtest"
	"github.com/qinqing/qinqing/shared/runtime/functest"
)

// firstEvent is the event a cold process gets first: a cheap one of its
// own that goes through the database (for webhook-ingress: a signed
// webhook forwarded to K_SINK; for open311, which answers HTTP rather
// than events: its service list).
type firstEvent struct {
	get       bool // a GET of path (open311's service list) instead of an event
	path, typ string
	data      func(n int) any
	header    func(n int, body []byte) http.Header // replaces the CloudEvents headers
}

var coldEvents = map[string]firstEvent{
	"bare-receiver": {typ: "cn.huzhou.forum.signup.requested", data: func(n int) any { return map[string]any{"n": n} }},
	"forum-signup": {typ: "cn.huzhou.forum.signup.requested", data: func(n int) any {
		return map[string]any{"forumId": "F-cold", "enterprise": map[string]any{"uscc": event.SampleUSCC(n), "name": "湖州冷启动企业", "county": "wuxing"},
			"contact": map[string]any{"name": "张三", "phone": "13800000000"}, "mode": "self", "topic": "融资难"}
	}},
	"appeal-router": {typ: "cn.huzhou.appeal.accepted", data: func(n int) any {
		return map[string]any{"appealId": fmt.Sprint("A-cold-", n), "department": "city-economy"}
	}},
	"deadline-check": {typ: event.PingType, data: func(int) any { return map[string]any{"job": "deadline-check"} }},
	"subsidy-disbursal": {typ: "cn.huzhou.subsidy.payment.settled", data: func(n int) any {
		return map[string]any{"disbursementId": fmt.Sprint("D-cold-", n), "bankRef": "ICBC-1", "settledAt": "2026-12-03T14:30:00+08:00"}
	}},
	"recycling-trade": {typ: "cn.huzhou.recycling.licence.registered", data: func(n int) any {
		return map[string]any{"licenceNo": fmt.Sprint("HW-COLD-", n), "collector": map[string]any{"uscc": event.SampleUSCC(n), "name": "长兴回收"},
			"validFrom": "2026-01-01", "validTo": "2031-12-31", "annualCapacityKg": 1000}
	}},
	"award-ceremony": {typ: "cn.huzhou.enterprise.metrics.reported", data: func(n int) any {
		return map[string]any{"uscc": event.SampleUSCC(n), "name": "湖州恒达新材料有限公司", "county": "wuxing", "year": 2026, "private": true,
			"revenueFen": 100, "taxFen": 10, "employees": 120}
	}},
	"webhook-egress": {typ: "cn.huzhou.forum.signup.confirmed", data: func(n int) any {
		return map[string]any{"signupId": fmt.Sprint("S-cold-", n), "forumId": "F-cold", "uscc": event.SampleUSCC(n), "status": "confirmed"}
	}},
	"open311":     {get: true, path: "/open311/v2/services.json"},
	"dead-letter": {typ: "cn.huzhou.forum.signup.requested", data: func(n int) any { return map[string]any{"n": n} }},
	"webhook-ingress": {path: "/webhooks/enterprise", data: func(n int) any {
		return map[string]any{"type": "cn.huzhou.forum.signup.requested", "data": map[string]any{"forumId": "F-cold", "n": n}}
	}, header: func(n int, body []byte) http.Header {
		id, ts := fmt.Sprint("wh-cold-", n), strconv.FormatInt(time.Now().Unix(), 10)
		m := hmac.New(sha256.New, []byte(coldSecret))
		m.Write([]byte(id + "." + ts + "."))
		m.Write(body)
		h := http.Header{}
		h.Set("Content-Type", "application/json")
		h.Set("webhook-id", id)
		h.Set("webhook-timestamp", ts)
		h.Set("webhook-signature", "v1,"+base64.StdEncoding.EncodeToString(m.Sum(nil)))
		return h
	}},
}

const coldSecret = "cold-start portal key"

// coldRun is one start: exec → /healthz 200, exec → first reply, RSS then,
// and the CPU time spent until the reply by the process (every thread) and
// by the database backend of its first connection.
type coldRun struct {
	healthz, reply      time.Duration
	rssKiB              int
	cpuMS, backendCPUMS float64
}

// BenchmarkColdStart starts every function binary, and the bare receiver
// (net/http + sdk-go + pgxpool), 25 times each, interleaved, with only the
// environment a pod would have (no AWS_CA_BUNDLE, no HOME), and reports
// the medians of exec → /healthz 200, exec → first reply (the event goes
// through the database and, for the bare receiver, one statement), and
// the resident memory 100 ms after the reply, each with its ratio to the
// bare receiver (goals: reply ≤ 1.3×, RSS ≤ 1.5×). A run is always 25
// starts of each, whatever b.N: with 15, the worst of ten ratios of
// medians moved by ±0.1 from run to run on a quiet machine. Each start
// begins once the database backends of the one before have exited
// (settle): a backend's exit takes a few milliseconds of CPU after its
// client has gone, and the start after it paid for it (the bare
// receiver, started after award-ceremony, more than most).
//
// It also prints the medians of the CPU time spent until the first reply
// by the process and by the backend of its first connection, with their
// ratios to the bare receiver's. They are not goals: they say where a
// cold start's time goes. This machine's two cores are busy throughout a
// cold start (the process, its new backend, this benchmark and other
// load), so the first reply comes about as late as the CPU work before it
// allows, and these ratios move far less with the load than the times do
// (README, Speed).
func BenchmarkColdStart(b *testing.B) {
	dir := b.TempDir()
	build := exec.Command("go", "build", "-o", dir+"/", "github.com/qinqing/qinqing/functions/...", "github.com/qinqing/qinqing/cmd/bare-receiver")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		b.Fatal(err)
	}
	url := pgtest.URL(b)
	admin := pgtest.PoolFor(b, url)
	s3, _ := s3test.New(b)
	sink := functest.NewSink(b)
	portals := filepath.Join(dir, "portals.json")
	secret := "whsec_" + base64.StdEncoding.EncodeToString([]byte(coldSecret))
	if err := os.WriteFile(portals, []byte(fmt.Sprintf(`{"portals": {"enterprise": {"secrets": [%q], "allowedTypes": ["cn.huzhou.forum.signup.requested"]}}}`, secret)), 0o600); err != nil {
		b.Fatal(err)
	}
	env := append([]string{"DATABASE_URL=" + url, "K_SINK=" + sink.URL, "PORTALS_FILE=" + portals,
		"AWS_ACCESS_KEY_ID=" + s3test.AccessKey, "AWS_SECRET_ACCESS_KEY=" + s3test.SecretKey}, s3.Env()...)
	names := make([]string, 0, len(coldEvents))
	for name := range coldEvents {
		names = append(names, name)
	}
	slices.Sort(names)
	runs := map[string][]coldRun{}
	n := 0
	const starts = 25
	for i := 0; i < starts; i++ {
		for _, name := range names {
			n++
			runs[name] = append(runs[name], coldStart(b, admin, filepath.Join(dir, name), env, coldEvents[name], n))
		}
	}
	median := func(name string, f func(coldRun) float64) float64 {
		v := make([]float64, 0, starts)
		for _, r := range runs[name] {
			v = append(v, f(r))
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	health := func(r coldRun) float64 { return ms(r.healthz) }
	reply := func(r coldRun) float64 { return ms(r.reply) }
	rss := func(r coldRun) float64 { return float64(r.rssKiB) / 1024 }
	bh, br, bm := median("bare-receiver", health), median("bare-receiver", reply), median("bare-receiver", rss)
	fmt.Printf("cold start, median of %d: %-18s healthz %5.1f ms  first reply %5.1f ms  RSS %4.1f MiB\n", starts, "bare-receiver", bh, br, bm)
	worstReply, worstRSS := 0.0, 0.0
	for _, name := range names {
		if name == "bare-receiver" {
			continue
		}
		h, r, m := median(name, health), median(name, reply), median(name, rss)
		worstReply, worstRSS = max(worstReply, r/br), max(worstRSS, m/bm)
		fmt.Printf("cold start, median of %d: %-18s healthz %5.1f ms (%.2f)  first reply %5.1f ms (%.2f)  RSS %4.1f MiB (%.2f)\n",
			starts, name, h, h/bh, r, r/br, m, m/bm)
	}
	cpu := func(r coldRun) float64 { return r.cpuMS }
	backend := func(r coldRun) float64 { return r.backendCPUMS }
	bc, bb := median("bare-receiver", cpu), median("bare-receiver", backend)
	fmt.Printf("cold start CPU to the first reply, median of %d: %-18s process %5.1f ms  its backend %4.1f ms\n", starts, "bare-receiver", bc, bb)
	for _, name := range names {
		if name == "bare-receiver" {
			continue
		}
		c, be := median(name, cpu), median(name, backend)
		fmt.Printf("cold start CPU to the first reply, median of %d: %-18s process %5.1f ms (%.2f)  its backend %4.1f ms (%.2f)\n",
			starts, name, c, c/bc, be, be/bb)
	}
	b.ReportMetric(br, "bare-reply-ms")
	b.ReportMetric(worstReply, "worst-x-bare-reply")
	b.ReportMetric(worstRSS, "worst-x-bare-rss")
}

// coldStart execs bin with env only, polls /healthz until 200, sends ev,
// reads the CPU time the process and its first backend have spent at the
// reply and the process's RSS 100 ms after it, and stops it.
func coldStart(b *testing.B, admin *pgxpool.Pool, bin string, env []string, ev firstEvent, n int) coldRun {
	port := functest.FreePort(b)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	cmd := exec.Command(bin)
	cmd.Env = append([]string{"PATH=/usr/bin:/bin", fmt.Sprintf("PORT=%d", port)}, env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	var backends []int
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		settle(backends)
	}()
	var run coldRun
	for {
		resp, err := client.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				run.healthz = time.Since(start)
				break
			}
		}
		if time.Since(start) > 20*time.Second {
			b.Fatalf("%s did not serve: %s", filepath.Base(bin), out.String())
		}
		time.Sleep(200 * time.Microsecond)
	}
	var req *http.Request
	var body []byte
	if ev.get {
		req, _ = http.NewRequest(http.MethodGet, base+ev.path, nil)
	} else {
		body, _ = json.Marshal(ev.data(n))
		req, _ = http.NewRequest(http.MethodPost, base+ev.path+"/", bytes.NewReader(body))
	}
	switch {
	case ev.get:
	case ev.path != "":
		req.URL.Path = ev.path
		req.Header = ev.header(n, body)
	default:
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Ce-Specversion", "1.0")
		req.Header.Set("Ce-Type", ev.typ)
		req.Header.Set("Ce-Source", "/cold-start")
		req.Header.Set("Ce-Id", fmt.Sprint("cold-", n))
		req.Header.Set("Ce-Time", "2026-12-01T09:00:00Z")
	}
	resp, err := client.Do(req)
	if err != nil {
		b.Fatalf("%s: %v\n%s", filepath.Base(bin), err, out.String())
	}
	reply, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	run.reply = time.Since(start)
	run.cpuMS = cpuMS(cmd.Process.Pid)
	// The process's first connection is the first backend started since the
	// exec (the outbox relay's come after the first reply). A function that
	// answered without the database has none.
	var backendPID int
	err = admin.QueryRow(context.Background(), `SELECT pid FROM pg_stat_activity
		WHERE backend_type = 'client backend' AND backend_start >= $1 ORDER BY backend_start LIMIT 1`, start).Scan(&backendPID)
	if err == nil {
		run.backendCPUMS = cpuMS(backendPID)
	} else if !errors.Is(err, pgx.ErrNoRows) {
		b.Fatal(err)
	}
	if resp.StatusCode >= 300 {
		b.Fatalf("%s: first event answered %d %s\n%s", filepath.Base(bin), resp.StatusCode, reply, out.String())
	}
	time.Sleep(100 * time.Millisecond)
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			run.rssKiB, _ = strconv.Atoi(f[1])
		}
	}
	rows, err := admin.Query(context.Background(), `SELECT pid FROM pg_stat_activity
		WHERE backend_type = 'client backend' AND backend_start >= $1`, start)
	if err != nil {
		b.Fatal(err)
	}
	if backends, err = pgx.CollectRows(rows, pgx.RowTo[int]); err != nil {
		b.Fatal(err)
	}
	return run
}

// settle waits, up to a second, until the database backends of a start
// are gone: a backend's exit (tearing down its memory) takes the CPU for
// a few milliseconds after its client closed the connection, and the next
// start must not pay for it.
func settle(pids []int) {
	deadline := time.Now().Add(time.Second)
	for _, pid := range pids {
		for time.Now().Before(deadline) {
			if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err != nil {
				break
			}
			time.Sleep(500 * time.Microsecond)
		}
	}
}

// cpuMS is the CPU time that the process pid has spent so far, every
// thread of it, in milliseconds: the first field of each thread's
// /proc/<pid>/task/<tid>/schedstat, in nanoseconds (0 where the kernel
// keeps none).
func cpuMS(pid int) float64 {
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	var ns int64
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, t.Name()))
		if err != nil {
			continue
		}
		if f := strings.Fields(string(b)); len(f) > 0 {
			v, _ := strconv.ParseInt(f[0], 10, 64)
			ns += v
		}
	}
	return float64(ns) / 1e6
}
