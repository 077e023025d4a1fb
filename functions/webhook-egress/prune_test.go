package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/qinqing/qinqing/shared/postgres/pgtest"
)

// prune removes old attempts and old settled deliveries, in batches, and
// keeps recent rows and deliveries still to be retried.
func TestPrune(t *testing.T) {
	t.Parallel()
	pool := pgtest.Pool(t)
	ctx := context.Background()
	for _, q := range []string{
		`INSERT INTO egress.attempts (portal, webhook_id, type, attempt, status, latency_ms, attempted_at)
			SELECT 'p', 'old-' || g, 't', 1, 'delivered', 1, now() - interval '100 days' FROM generate_series(1, 12000) g`,
		`INSERT INTO egress.attempts (portal, webhook_id, type, attempt, status, latency_ms) VALUES ('p', 'recent', 't', 1, 'delivered', 1)`,
		`INSERT INTO egress.deliveries (portal, webhook_id, type, event_source, state, updated_at) VALUES
			('p', 'old-delivered', 't', '/s', 'delivered', now() - interval '100 days'),
			('p', 'old-failed', 't', '/s', 'failed', now() - interval '100 days'),
			('p', 'old-retrying', 't', '/s', 'retrying', now() - interval '100 days'),
			('p', 'recent', 't', '/s', 'delivered', now())`,
	} {
		if _, err := pool.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	attempts, deliveries, err := prune(ctx, pool, time.Now().Add(-90*24*time.Hour))
	if err != nil || attempts != 12000 || deliveries != 2 {
		t.Fatalf("prune = %d attempts, %d deliveries, %v; want 12000, 2", attempts, deliveries, err)
	}
	var left []string
	rows, _ := pool.Query(ctx, `SELECT 'a:' || webhook_id FROM egress.attempts UNION ALL SELECT 'd:' || webhook_id FROM egress.deliveries ORDER BY 1`)
	for rows.Next() {
		var s string
		_ = rows.Scan(&s)
		left = append(left, s)
	}
	if fmt.Sprint(left) != "[a:recent d:old-retrying d:recent]" {
		t.Fatalf("left %v", left)
	}
}
