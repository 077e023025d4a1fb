// Command devstack is `make run`: the whole of qinqing on one machine. It
// starts (or reuses) PostgreSQL and migrates it, serves an S3-compatible
// endpoint with objects kept under .dev/s3, builds and starts every
// function as its own process, plays the Knative broker (routing by the
// same catalogue the Helm chart's Triggers come from), replays a sample
// week of events, prints what happened, and keeps serving until Ctrl-C.
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/qinqing/qinqing/shared/contract"
	"github.com/qinqing/qinqing/shared/docs/s3test"
	"github.com/qinqing/qinqing/shared/postgres/migrate"
	otlprecv "github.com/qinqing/qinqing/shared/telemetry/receiver"
)

func main() {
	dir := flag.String("dir", ".dev", "state folder (Postgres cluster, S3 objects, binaries, logs); git-ignored")
	weekDir := flag.String("week", "cmd/devstack/week", "folder of sample-week *.jsonl files, played in name order")
	serve := flag.Bool("serve", true, "keep serving after the week until interrupted")
	brokerPort := flag.Int("port", 8080, "broker port; functions take the ports after it (any free port when taken)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *dir, *weekDir, *serve, *brokerPort); err != nil {
		fmt.Fprintln(os.Stderr, "devstack:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, dir, weekDir string, serve bool, brokerPort int) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	dir = abs
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	logPath := filepath.Join(dir, "functions.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logFile.Close()

	// Postgres.
	dbURL := os.Getenv("DATABASE_URL")
	if dbURL == "" {
		step("starting PostgreSQL (throwaway cluster in %s/postgres, kept between runs)", dir)
		out, err := exec.Command("hack/pg.sh", "start", filepath.Join(dir, "postgres")).Output()
		if err != nil {
			return fmt.Errorf("start postgres: %w", err)
		}
		dbURL = strings.TrimSpace(string(out))
		defer func() { _ = exec.Command("hack/pg.sh", "stop", filepath.Join(dir, "postgres")).Run() }()
	}
	step("migrating %s", dbURL)
	applied, err := migrate.Up(ctx, dbURL)
	if err != nil {
		return err
	}
	step("applied %d migrations", len(applied))
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		return err
	}
	defer pool.Close()

	// S3.
	s3, err := s3test.Start(fmt.Sprintf("127.0.0.1:%d", offset(brokerPort, 100)), filepath.Join(dir, "s3"), "qinqing")
	if err != nil {
		s3, err = s3test.Start("127.0.0.1:0", filepath.Join(dir, "s3"), "qinqing")
		if err != nil {
			return fmt.Errorf("start S3 endpoint: %w", err)
		}
	}
	defer s3.Close()
	step("S3-compatible endpoint %s, bucket %s (objects under %s/s3)", s3.URL, s3.Bucket, dir)

	// Broker.
	bln, err := listen(brokerPort)
	if err != nil {
		return err
	}
	brokerURL := "http://" + bln.Addr().String()

	// Functions.
	step("building functions")
	names, err := buildFunctions(filepath.Join(dir, "bin"))
	if err != nil {
		return err
	}
	portalSecret := make([]byte, 24)
	_, _ = rand.Read(portalSecret)
	// The portals' own endpoints, where webhook-egress sends their updates.
	notifyKeys := map[string][]byte{}
	for _, name := range notifiedPortals {
		notifyKeys[name] = make([]byte, 24)
		_, _ = rand.Read(notifyKeys[name])
	}
	recv, err := startReceiver(notifyKeys)
	if err != nil {
		return err
	}
	portals := filepath.Join(dir, "portals.json")
	if err := writePortals(portals, portalSecret, recv, notifyKeys); err != nil {
		return err
	}
	common := map[string]string{
		"DATABASE_URL": dbURL, "K_SINK": brokerURL, "QINQING_TIMEZONE": "Asia/Shanghai",
		"RELAY_INTERVAL": "500ms", "ADMIN_TOKEN": "dev-admin-token", "PORTALS_FILE": portals,
	}
	for _, kv := range s3.Env() {
		k, v, _ := strings.Cut(kv, "=")
		common[k] = v
	}
	// The collector of make run: every function exports its spans and
	// metrics to this in-process OTLP receiver.
	otlp, err := otlprecv.Start("127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("start OTLP receiver: %w", err)
	}
	defer otlp.Close()
	for k, v := range telemetryEnv(otlp) {
		common[k] = v
	}
	// Each function connects as its own login role, as the chart has it
	// (migration 0090's group roles, cmd/migrate -create-login-roles); the
	// stack itself (migrations, the summary) stays the owner.
	// A DATABASE_URL whose role may not create roles keeps every function
	// on that URL.
	roleURLs, err := loginRoleURLs(ctx, dbURL)
	if err != nil {
		step("the functions connect as the owner: no login roles (%v)", err)
	} else {
		step("%d functions connect as their own login roles (qinqing_<function>_login)", len(roleURLs))
	}
	var logMu sync.Mutex
	urls := map[string]string{}
	var procs []*proc
	defer func() {
		for _, p := range procs {
			p.stop()
		}
	}()
	port := brokerPort
	for _, name := range names {
		if port > 0 {
			port++
		}
		pp, err := freePort(port)
		if err != nil {
			return err
		}
		env := maps.Clone(common)
		if u, ok := roleURLs[name]; ok {
			env["DATABASE_URL"] = u
		}
		p, err := startProc(ctx, filepath.Join(dir, "bin", name), name, pp, envList(env), logFile, &logMu)
		if err != nil {
			return fmt.Errorf("%w; log in %s", err, logPath)
		}
		procs = append(procs, p)
		urls[name] = p.url
	}
	b := newBroker(urls)
	srv := &http.Server{Handler: b, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(bln) }()
	defer srv.Close()
	bctx, cancelBroker := context.WithCancel(ctx)
	defer cancelBroker()
	b.run(bctx, 4)
	step("broker %s routing to %d functions (logs: %s)", brokerURL, len(procs), logPath)

	// The week.
	lines, err := readWeek(weekDir)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\n═══ The sample week: %d events from %s ═══\n", len(lines), weekDir)
	pl := &player{broker: b, brokerURL: brokerURL, webhookURL: urls["webhook-ingress"], portalKey: portalSecret,
		receiver: recv, pool: pool, out: stdout, client: &http.Client{Timeout: 60 * time.Second}}
	if err := pl.play(ctx, lines); err != nil {
		return err
	}
	fmt.Fprintln(stdout)
	summarize(ctx, stdout, pool, b)
	portalSummary(stdout, recv)
	caseTrace(ctx, stdout, pool, otlp)
	metricsSummary(stdout, urls)
	if u, ok := urls["open311"]; ok {
		open311Story(ctx, stdout, u, pl.client)
	}

	fmt.Fprintf(stdout, "\n═══ Serving on localhost ═══\n")
	fmt.Fprintf(stdout, "  %-18s %s  (POST CloudEvents here; routed like the Knative broker)\n", "broker", brokerURL)
	for _, p := range procs {
		fmt.Fprintf(stdout, "  %-18s %s\n", p.name, p.url)
	}
	fmt.Fprintf(stdout, "  %-18s %s  (bucket %s)\n", "s3", s3.URL, s3.Bucket)
	fmt.Fprintf(stdout, "  %-18s %s\n", "postgres", dbURL)
	fmt.Fprintf(stdout, "  %-18s %s/portals/<name>  (the portals' endpoints: %s)\n", "portal receiver", recv.url, strings.Join(notifiedPortals, ", "))
	if u, ok := urls["dead-letter"]; ok {
		fmt.Fprintf(stdout, "  dead letters: go run ./cmd/qinqing deadletters list --url %s --token dev-admin-token\n", u)
	}
	if u, ok := urls["webhook-egress"]; ok {
		fmt.Fprintf(stdout, "  portal deliveries: go run ./cmd/qinqing deliveries list --url %s --token dev-admin-token\n", u)
	}
	if !serve {
		return nil
	}
	fmt.Println("Press Ctrl-C to stop.")
	<-ctx.Done()
	fmt.Println("\nstopping")
	return nil
}

// offset returns base+n, or 0 (any free port) when base is 0.
func offset(base, n int) int {
	if base == 0 {
		return 0
	}
	return base + n
}

// stdout is where the story of the run goes (a test swaps it).
var stdout io.Writer = os.Stdout

func step(format string, args ...any) {
	fmt.Fprintf(stdout, "• "+format+"\n", args...)
}

// notifiedPortals receive their updates from webhook-egress in make run:
// the enterprise portal (which also sends webhooks) and the hotline.
var notifiedPortals = []string{"enterprise-portal", "hotline-12345"}

// writePortals writes the local PORTALS_FILE: "enterprise-portal" sends
// webhooks with a fresh secret per run, allowed every type a portal may
// send (not the outbound updates webhook-egress consumes), and each
// notified portal receives every update type at the local receiver (plain
// http on loopback, so insecure and allowPrivate).
func writePortals(path string, secret []byte, recv *receiver, notifyKeys map[string][]byte) error {
	outbound := map[string]bool{}
	for _, s := range contract.Catalog {
		if s.Function == "webhook-egress" {
			for _, t := range s.Types {
				outbound[t] = true
			}
		}
	}
	var types, updates []string
	for _, s := range contract.Catalog {
		for _, t := range s.Types {
			if outbound[t] {
				if s.Function == "webhook-egress" {
					updates = append(updates, t)
				}
				continue
			}
			types = append(types, t)
		}
	}
	ps := map[string]any{}
	for _, name := range notifiedPortals {
		ps[name] = map[string]any{"notify": map[string]any{
			"url":     recv.url + "/portals/" + name,
			"secrets": []string{"whsec_" + base64.StdEncoding.EncodeToString(notifyKeys[name])},
			"types":   updates, "insecure": true, "allowPrivate": true,
		}}
	}
	ps["enterprise-portal"].(map[string]any)["secrets"] = []string{"whsec_" + base64.StdEncoding.EncodeToString(secret)}
	ps["enterprise-portal"].(map[string]any)["allowedTypes"] = types
	for name, key := range open311Keys {
		ps[name].(map[string]any)["apiKeys"] = []string{key}
	}
	b, err := json.MarshalIndent(map[string]any{"portals": ps}, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}
