package subsidy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/qinqing/qinqing/shared/contract"
	"github.com/qinqing/qinqing/shared/postgres"
)

// This file is the subsidy domain's store for the functions other than
// subsidy-disbursal that touch its schema (docs/runtime.md, "Where SQL
// lives"): deadline-check (reads disbursements and settlements, writes its
// payment_overdue_announcements) and webhook-egress (only a
// disbursement's event_source). subsidy-disbursal's own statements stay
// in its store.go.

// AnnounceOverduePayments finds, as of asOf, every subsidy payment not
// settled by its due time: due before asOf and not settled at or before
// asOf (the treasury's settledAt), so a replayed check gives the same count.
//
// n is the number of payments overdue as of asOf, announced now or by an
// earlier check: the `overdue.payment` figure of deadline.check.completed.
// fresh holds one cn.huzhou.subsidy.payment.overdue per payment not
// announced before (Key OverdueKey(id)); each is announced once, whatever
// the number of checks, because a row in
// subsidy.payment_overdue_announcements is written in tx with it (a
// concurrent check waits on that row's unique key and then skips it).
// dueAt is written in asOf's location: pass asOf in the business time
// zone (m.Time.In(env.Loc)).
//
// Call it inside the check's transaction and send fresh as follow-ups of
// its result; a rollback takes the announcements back with everything
// else.
func AnnounceOverduePayments(ctx context.Context, tx pgx.Tx, asOf time.Time) (n int, fresh []Announcement, err error) {
	rows, err := tx.Query(ctx, overduePaymentsSQL, asOf)
	if err != nil {
		return 0, nil, fmt.Errorf("overdue payments: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var p contract.PaymentOverdue
		var now bool
		if err := rows.Scan(&p.DisbursementID, &p.USCC, &p.AmountFen, &p.DueAt, &now); err != nil {
			return 0, nil, fmt.Errorf("overdue payments: %w", err)
		}
		n++
		if now {
			p.DueAt = p.DueAt.In(asOf.Location())
			fresh = append(fresh, Announcement{Key: OverdueKey(p.DisbursementID), Type: contract.TypePaymentOverdue, Data: p})
		}
	}
	if err := rows.Err(); err != nil {
		return 0, nil, fmt.Errorf("overdue payments: %w", err)
	}
	return n, fresh, nil
}

// overduePayments is the rule: the payments due before $1 (asOf) and not
// settled at or before it.
const overduePayments = `d.disbursement_id, d.uscc, d.amount_fen, d.due_at
		FROM subsidy.disbursements d
		LEFT JOIN subsidy.settlements s ON s.disbursement_id = d.disbursement_id
		WHERE d.due_at < $1 AND (s.settled_at IS NULL OR s.settled_at > $1)`

// overduePaymentsSQL finds the payments overdue as of $1 and announces
// those not announced before (AnnounceOverduePayments).
const overduePaymentsSQL = `WITH overdue AS (
		SELECT ` + overduePayments + `
	), announced AS (
		INSERT INTO subsidy.payment_overdue_announcements (disbursement_id, as_of)
		SELECT disbursement_id, $1 FROM overdue ORDER BY disbursement_id
		ON CONFLICT (disbursement_id) DO NOTHING
		RETURNING disbursement_id
	)
	SELECT o.disbursement_id, o.uscc, o.amount_fen, o.due_at, a.disbursement_id IS NOT NULL
	FROM overdue o LEFT JOIN announced a ON a.disbursement_id = o.disbursement_id
	ORDER BY o.due_at, o.disbursement_id`

// Announcement is one follow-up to send: its CloudEvents type, its outbox
// key and its data. The domain says what to announce; the runtime's
// Outgoing (which shared/subsidy does not import: transport sits above
// the domain) carries it.
type Announcement struct {
	Type string
	Key  string
	Data contract.PaymentOverdue
}

// DisbursementSource returns the source of the event a disbursement was
// approved for, false when the disbursement is not on record
// (webhook-egress: its role may read only disbursement_id and
// event_source of subsidy.disbursements).
func DisbursementSource(ctx context.Context, q postgres.Querier, disbursementID string) (string, bool, error) {
	var source string
	err := q.QueryRow(ctx, `SELECT event_source FROM subsidy.disbursements WHERE disbursement_id = $1`, disbursementID).Scan(&source)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return "", false, nil
	case err != nil:
		return "", false, fmt.Errorf("disbursement origin: %w", err)
	}
	return source, true, nil
}
