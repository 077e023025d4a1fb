package subsidy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/qinqing/qinqing/shared/contract"
	"github.com/qinqing/qinqing/shared/event"
	"github.com/qinqing/qinqing/shared/postgres"
	"github.com/qinqing/qinqing/shared/postgres/pgtest"
	"github.com/qinqing/qinqing/shared/subsidy"
	"github.com/qinqing/qinqing/shared/testkit"
)

func at(s string) time.Time {
	t, err := time.ParseInLocation("2006-01-02 15:04:05", s, testkit.Shanghai)
	if err != nil {
		panic(err)
	}
	return t
}

// ledger writes disbursements (and settlements) the way subsidy-disbursal
// does, for the overdue checks to find.
type ledger struct {
	t    *testing.T
	pool *pgxpool.Pool
}

func setup(t *testing.T) *ledger {
	t.Helper()
	l := &ledger{t: t, pool: pgtest.Pool(t)}
	l.exec(`INSERT INTO subsidy.policies (policy_id, name, trigger, budget_fen, definition, updated_at)
		VALUES ('P', 'test policy', 'cn.huzhou.honour.awarded', 1000000, '{}', now())`)
	return l
}

func (l *ledger) exec(sql string, args ...any) {
	l.t.Helper()
	if _, err := l.pool.Exec(context.Background(), sql, args...); err != nil {
		l.t.Fatal(err)
	}
}

// approve adds a disbursement of amount fen due at due.
func (l *ledger) approve(id string, n int, amount int64, due time.Time) {
	l.t.Helper()
	l.exec(`INSERT INTO subsidy.disbursements (disbursement_id, policy_id, uscc, basis, amount_fen, approval_year,
			approved_at, due_at, event_type, event_source, event_id)
		VALUES ($1, 'P', $2, $1, $3, 2026, $4, $5, 'cn.huzhou.honour.awarded', '/test', $1)`,
		id, event.SampleUSCC(n), amount, due.AddDate(0, 0, -7), due)
	l.exec(`INSERT INTO subsidy.payment_requests (disbursement_id, attempt, requested_at) VALUES ($1, 1, $2)`, id, due.AddDate(0, 0, -7))
}

func (l *ledger) settle(id string, settledAt time.Time) {
	l.t.Helper()
	l.exec(`INSERT INTO subsidy.settlements (disbursement_id, attempt, bank_ref, settled_at, recorded_at, event_source, event_id)
		VALUES ($1, 1, 'BANK-'||$1, $2, $2, '/treasury', 'settle-'||$1)`, id, settledAt)
}

// check runs one deadline check as of asOf in its own transaction.
func (l *ledger) check(asOf time.Time) (int, []subsidy.Announcement) {
	l.t.Helper()
	var n int
	var fs []subsidy.Announcement
	err := postgres.InTx(context.Background(), l.pool, func(tx pgx.Tx) error {
		var err error
		n, fs, err = subsidy.AnnounceOverduePayments(context.Background(), tx, asOf)
		return err
	})
	if err != nil {
		l.t.Fatal(err)
	}
	return n, fs
}

func ids(fs []subsidy.Announcement) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.Data.DisbursementID
	}
	return out
}

func TestAnnounceOverduePayments(t *testing.T) {
	t.Parallel()
	l := setup(t)
	due := at("2026-12-07 23:59:59")
	l.approve("A", 1, 100_000_000, due)            // never settled
	l.approve("B", 2, 5_000, due)                  // settled in time
	l.approve("C", 3, 7_000, due)                  // settled late
	l.approve("D", 4, 9_000, due.AddDate(0, 0, 3)) // due 10 December
	l.settle("B", at("2026-12-05 10:00:00"))
	l.settle("C", at("2026-12-09 10:00:00"))

	t.Run("NotYetDue", func(t *testing.T) {
		if n, fs := l.check(due); n != 0 || len(fs) != 0 {
			t.Fatalf("as of the due time: n = %d, follow-ups %v; want 0, none", n, ids(fs))
		}
	})
	t.Run("OK", func(t *testing.T) {
		n, fs := l.check(at("2026-12-08 09:00:00"))
		if n != 2 || fmt.Sprint(ids(fs)) != "[A C]" {
			t.Fatalf("n = %d, announced %v; want 2, [A C]", n, ids(fs))
		}
		f := fs[0]
		if f.Type != contract.TypePaymentOverdue || f.Key != "payment-overdue/A" {
			t.Fatalf("follow-up type %q key %q", f.Type, f.Key)
		}
		got, _ := json.Marshal(f.Data)
		want := `{"disbursementId":"A","uscc":"` + event.SampleUSCC(1) + `","amountFen":100000000,"dueAt":"2026-12-07T23:59:59+08:00"}`
		if string(got) != want {
			t.Fatalf("data = %s\nwant   %s", got, want)
		}
	})
	t.Run("AnnouncedOnce", func(t *testing.T) {
		// Still overdue, already announced: counted, not announced again.
		n, fs := l.check(at("2026-12-08 10:00:00"))
		if n != 2 || len(fs) != 0 {
			t.Fatalf("n = %d, announced %v; want 2, none", n, ids(fs))
		}
	})
	t.Run("SettledLateNoLongerOverdue", func(t *testing.T) {
		// C is settled now, D is due tonight: only A is overdue.
		if n, fs := l.check(at("2026-12-10 09:00:00")); n != 1 || len(fs) != 0 {
			t.Fatalf("n = %d, announced %v; want 1, none", n, ids(fs))
		}
	})
	t.Run("NewlyOverdue", func(t *testing.T) {
		if n, fs := l.check(at("2026-12-11 09:00:00")); n != 2 || fmt.Sprint(ids(fs)) != "[D]" {
			t.Fatalf("n = %d, announced %v; want 2, [D]", n, ids(fs))
		}
	})
	t.Run("ReplayedAsOf", func(t *testing.T) {
		// A check replayed as of 8 December counts what was overdue then.
		if n, fs := l.check(at("2026-12-08 09:00:00")); n != 2 || len(fs) != 0 {
			t.Fatalf("n = %d, announced %v; want 2, none", n, ids(fs))
		}
	})
}

func TestAnnounceRolledBack(t *testing.T) {
	t.Parallel()
	l := setup(t)
	l.approve("A", 1, 100, at("2026-12-07 23:59:59"))
	asOf := at("2026-12-08 09:00:00")
	ctx := context.Background()
	tx, err := l.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, fs, err := subsidy.AnnounceOverduePayments(ctx, tx, asOf); err != nil || len(fs) != 1 {
		t.Fatalf("got %v, %v", ids(fs), err)
	}
	_ = tx.Rollback(ctx)
	// The check that failed announced nothing: the next one announces.
	if n, fs := l.check(asOf); n != 1 || len(fs) != 1 {
		t.Fatalf("after rollback: n = %d, announced %v; want 1, [A]", n, ids(fs))
	}
}

func TestAnnounceConcurrentChecks(t *testing.T) {
	t.Parallel()
	l := setup(t)
	const payments, checks = 20, 12
	for i := range payments {
		l.approve(fmt.Sprintf("D%02d", i), i, int64(100+i), at("2026-12-07 23:59:59"))
	}
	var mu sync.Mutex
	announced := map[string]int{}
	var wg sync.WaitGroup
	for range checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, fs := l.check(at("2026-12-08 09:00:00"))
			if n != payments {
				t.Errorf("n = %d, want %d", n, payments)
			}
			mu.Lock()
			for _, id := range ids(fs) {
				announced[id]++
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	if len(announced) != payments {
		t.Fatalf("%d payments announced, want %d", len(announced), payments)
	}
	for id, k := range announced {
		if k != 1 {
			t.Errorf("%s announced %d times", id, k)
		}
	}
}
