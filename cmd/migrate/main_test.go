package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/qinqing/qinqing/shared/postgres/pgtest"
	"github.com/qinqing/qinqing/shared/runtime/functest"
)

var binary string

func TestMain(m *testing.M) { functest.Main(m, map[string]*string{".": &binary}) }

// migrationFiles are the names of every migration the binary embeds.
func migrationFiles(t *testing.T) []string {
	t.Helper()
	paths, err := filepath.Glob("../../shared/postgres/migrations/*.sql")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no migrations found: %v", err)
	}
	names := make([]string, len(paths))
	for i, p := range paths {
		names[i] = filepath.Base(p)
	}
	return names
}

// run runs cmd/migrate with only env (and PATH) and returns its output
// and exit code.
func run(t *testing.T, env ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(binary)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatalf("run migrate: %v", err)
	}
	return out.String(), cmd.ProcessState.ExitCode()
}

// applied lists the files a run's output says it applied.
func applied(out string) []string {
	var files []string
	for _, line := range strings.Split(out, "\n") {
		if f, ok := strings.CutPrefix(line, "migrate: applied "); ok {
			files = append(files, f)
		}
	}
	return files
}

// TestConcurrentRunsThroughPgBouncer runs cmd/migrate twice at once
// through PgBouncer in transaction pooling mode, in several rounds on
// fresh databases: both runs succeed, together they apply each migration
// exactly once, and a third run finds nothing to do.
func TestConcurrentRunsThroughPgBouncer(t *testing.T) {
	want := migrationFiles(t)
	for round := 1; round <= 3; round++ {
		t.Run(fmt.Sprintf("Round%d", round), func(t *testing.T) {
			direct := pgtest.EmptyURL(t)
			url := pgtest.PgBouncerURL(t, direct)
			outs, codes := make([]string, 2), make([]int, 2)
			var wg sync.WaitGroup
			for i := range outs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					outs[i], codes[i] = run(t, "DATABASE_URL="+url)
				}()
			}
			wg.Wait()
			var got []string
			for i := range outs {
				if codes[i] != 0 {
					t.Fatalf("run %d exited %d:\n%s", i, codes[i], outs[i])
				}
				got = append(got, applied(outs[i])...)
			}
			sort.Strings(got)
			if strings.Join(got, " ") != strings.Join(want, " ") {
				t.Fatalf("the two runs applied %v together, want each of %v once:\n%s\n%s", got, want, outs[0], outs[1])
			}
			out, code := run(t, "DATABASE_URL="+url)
			if code != 0 || !strings.Contains(out, "database is up to date") || len(applied(out)) != 0 {
				t.Fatalf("rerun through PgBouncer exited %d:\n%s", code, out)
			}
			pool := pgtest.PoolFor(t, direct)
			var rows, versions, held int
			ctx := context.Background()
			if err := pool.QueryRow(ctx, `SELECT count(*), count(DISTINCT version_id) FROM goose_db_version WHERE version_id > 0`).Scan(&rows, &versions); err != nil {
				t.Fatal(err)
			}
			if rows != len(want) || versions != len(want) {
				t.Fatalf("goose_db_version has %d rows for %d versions, want %d", rows, versions, len(want))
			}
			if err := pool.QueryRow(ctx, `SELECT count(*) FROM goose_lock WHERE locked`).Scan(&held); err != nil {
				t.Fatal(err)
			}
			if held != 0 {
				t.Fatalf("%d migration locks still held after the runs", held)
			}
		})
	}
}

// TestMigrationsURLFirst: MIGRATIONS_DATABASE_URL wins over DATABASE_URL
// (here one nothing listens on).
func TestMigrationsURLFirst(t *testing.T) {
	t.Parallel()
	url := pgtest.EmptyURL(t)
	out, code := run(t, "MIGRATIONS_DATABASE_URL="+url, "DATABASE_URL=postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=2")
	if code != 0 || len(applied(out)) != len(migrationFiles(t)) {
		t.Fatalf("exit %d, want every migration applied through MIGRATIONS_DATABASE_URL:\n%s", code, out)
	}
}

// TestNoURL: without either variable the command refuses with one line
// naming both.
func TestNoURL(t *testing.T) {
	t.Parallel()
	out, code := run(t)
	if code != 2 || strings.Count(strings.TrimSpace(out), "\n") != 0 ||
		!strings.Contains(out, "MIGRATIONS_DATABASE_URL") || !strings.Contains(out, "DATABASE_URL") {
		t.Fatalf("exit %d, want 2 and one line naming both variables:\n%s", code, out)
	}
}
