package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/qinqing/qinqing/shared/appeal"
	"github.com/qinqing/qinqing/shared/contract"
	"github.com/qinqing/qinqing/shared/contract/admin"
	"github.com/qinqing/qinqing/shared/forum"
	"github.com/qinqing/qinqing/shared/postgres"
	"github.com/qinqing/qinqing/shared/runtime"
	"github.com/qinqing/qinqing/shared/subsidy"
)

// origin is where an event's case came from: the source of the event that
// opened it (e.g. /portals/enterprise-portal), when that is on record.
type origin struct {
	source string
	known  bool
	// via names the record it was found in, for the log.
	via string
}

// caseOrigin finds the origin of the case an event belongs to:
//   - appeals (assigned, updated, overdue): the appeal's recorded source;
//     an appeal raised with a forum signup belongs to the signup's origin;
//   - signups (confirmed, waitlisted, cancelled.accepted): the signup's
//     recorded source, else the request the event answers;
//   - answers to one request (signup rejected, subsidy decided, import
//     completed): the source of the request, from the inbox of the
//     function that answered it; a subsidy decision falls back to its
//     first approval's disbursement;
//   - payments recorded: the source of the event the disbursement was
//     approved for.
func caseOrigin(ctx context.Context, db *pgxpool.Pool, m runtime.Meta, n *Notification) (origin, error) {
	switch m.Type {
	case contract.TypeAppealAssigned, contract.TypeAppealUpdated, contract.TypeAppealOverdue:
		return appealOrigin(ctx, db, n.AppealID)
	case contract.TypeSignupConfirmed, contract.TypeSignupWaitlisted, contract.TypeSignupCancelAccepted:
		o, err := signupOrigin(ctx, db, n.SignupID)
		if err != nil || o.known {
			return o, err
		}
		return requestOrigin(ctx, db, m)
	case contract.TypeSubsidyDecided:
		o, err := requestOrigin(ctx, db, m)
		if err != nil || o.known || len(n.Approvals) == 0 {
			return o, err
		}
		return disbursementOrigin(ctx, db, n.Approvals[0].DisbursementID)
	case contract.TypePaymentRecorded:
		return disbursementOrigin(ctx, db, n.DisbursementID)
	default: // signup rejected, import completed
		return requestOrigin(ctx, db, m)
	}
}

// appealOrigin: an appeal's origin (appeal.OriginOf).
func appealOrigin(ctx context.Context, db *pgxpool.Pool, appealID string) (origin, error) {
	a, found, err := appeal.OriginOf(ctx, db, appealID)
	switch {
	case err != nil:
		return origin{}, err
	case !found:
		return origin{via: "appeal not on record"}, nil
	case a.FromSignup && strings.HasPrefix(a.Source, runtime.SourceOf("")):
		// Raised by forum-signup from a signup's problems: the signup's case.
		if a.SignupSource == nil {
			return origin{via: "signup origin not on record"}, nil
		}
		return origin{source: *a.SignupSource, known: true, via: "appeal's signup"}, nil
	}
	return origin{source: a.Source, known: true, via: "appeal"}, nil
}

// signupOrigin: a signup's recorded source (forum.SignupSource).
func signupOrigin(ctx context.Context, db *pgxpool.Pool, signupID string) (origin, error) {
	source, _, err := forum.SignupSource(ctx, db, signupID)
	switch {
	case err != nil:
		return origin{}, err
	case source == nil:
		return origin{via: "signup origin not on record"}, nil
	}
	return origin{source: *source, known: true, via: "signup"}, nil
}

// disbursementOrigin: the source of the event a disbursement was approved
// for (subsidy.DisbursementSource).
func disbursementOrigin(ctx context.Context, db *pgxpool.Pool, disbursementID string) (origin, error) {
	source, found, err := subsidy.DisbursementSource(ctx, db, disbursementID)
	switch {
	case err != nil:
		return origin{}, err
	case !found:
		return origin{via: "disbursement not on record"}, nil
	}
	return origin{source: source, known: true, via: "disbursement"}, nil
}

// requestOrigin finds the request a reply answers: the runtime stores
// each reply's id in the inbox row of the event it answered, and gives
// the reply that row's received_at as its time (so the time bounds the
// search to an indexed range).
func requestOrigin(ctx context.Context, db *pgxpool.Pool, m runtime.Meta) (origin, error) {
	function, ok := strings.CutPrefix(m.Source, runtime.SourceOf(""))
	if !ok || !m.HasTime {
		return origin{via: "not a reply"}, nil
	}
	var source string
	err := db.QueryRow(ctx, `SELECT source FROM qinqing.inbox
		WHERE function = $1 AND reply_id = $2
		  AND received_at BETWEEN $3::timestamptz - interval '1 minute' AND $3::timestamptz + interval '1 minute'`,
		function, m.ID, m.Time).Scan(&source)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return origin{via: "request not on record"}, nil
	case err != nil:
		return origin{}, fmt.Errorf("request origin: %w", err)
	}
	return origin{source: source, known: true, via: "request"}, nil
}

// claim takes the delivery of webhookID to portal for one attempt: a new
// delivery, one that is to be retried, or one whose previous attempt's
// lease ran out (its process died). It returns the attempt number, or 0
// and the settled delivery's state ("delivered", "failed") and HTTP
// status, or "sending" while another attempt holds the lease.
func claim(ctx context.Context, db *pgxpool.Pool, portal string, m runtime.Meta, lease time.Duration) (int, string, *int, error) {
	var attempt int
	err := db.QueryRow(ctx, `INSERT INTO egress.deliveries AS d (portal, webhook_id, type, event_source, state, lease_until)
		VALUES ($1, $2, $3, $4, 'sending', now() + $5 * interval '1 millisecond')
		ON CONFLICT (portal, webhook_id) DO UPDATE
		SET state = 'sending', attempts = d.attempts + 1, lease_until = EXCLUDED.lease_until, updated_at = now()
		WHERE d.state = 'retrying' OR (d.state = 'sending' AND d.lease_until < now())
		RETURNING attempts`, portal, m.ID, m.Type, m.Source, lease.Milliseconds()).Scan(&attempt)
	if err == nil {
		return attempt, "", nil, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return 0, "", nil, fmt.Errorf("claim delivery: %w", err)
	}
	var state string
	var status *int
	if err := db.QueryRow(ctx, `SELECT state, http_status FROM egress.deliveries WHERE portal = $1 AND webhook_id = $2`,
		portal, m.ID).Scan(&state, &status); err != nil {
		return 0, "", nil, fmt.Errorf("read delivery: %w", err)
	}
	return 0, state, status, nil
}

// record stores one attempt and settles the delivery with its outcome, in
// one short transaction.
func record(ctx context.Context, db *pgxpool.Pool, portal string, m runtime.Meta, attempt int, a attemptResult) error {
	return postgres.InTx(ctx, db, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		b.Queue(`INSERT INTO egress.attempts (portal, webhook_id, type, attempt, status, http_status, latency_ms, error)
			VALUES ($1, $2, $3, $4, $5, $6, $7, NULLIF($8, ''))`,
			portal, m.ID, m.Type, attempt, a.status, a.httpStatus, float64(a.latency.Microseconds())/1000, a.err)
		b.Queue(`UPDATE egress.deliveries SET state = $3, http_status = $4, error = NULLIF($5, ''), lease_until = NULL, updated_at = now()
			WHERE portal = $1 AND webhook_id = $2`, portal, m.ID, a.status, a.httpStatus, a.err)
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("record attempt: %w", err)
		}
		return nil
	})
}

// listAttempts returns the newest attempts first, filtered by portal,
// status and webhook id where given.
func listAttempts(ctx context.Context, db *pgxpool.Pool, portal, status, webhookID string, limit int) ([]admin.Delivery, error) {
	rows, err := db.Query(ctx, `SELECT portal, webhook_id, type, attempt, status, http_status, latency_ms, error, attempted_at
		FROM egress.attempts
		WHERE ($1 = '' OR portal = $1) AND ($2 = '' OR status = $2) AND ($3 = '' OR webhook_id = $3)
		ORDER BY seq DESC LIMIT $4`, portal, status, webhookID, limit)
	if err != nil {
		return nil, fmt.Errorf("list attempts: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (admin.Delivery, error) {
		var a admin.Delivery
		err := r.Scan(&a.Portal, &a.WebhookID, &a.Type, &a.Attempt, &a.Status, &a.HTTPStatus, &a.LatencyMs, &a.Error, &a.AttemptedAt)
		return a, err
	})
	if err != nil {
		return nil, fmt.Errorf("list attempts: %w", err)
	}
	return out, nil
}
