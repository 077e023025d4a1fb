package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/qinqing/qinqing/shared/contract"
)

// Ledger accounts (migration 0030 explains the model).
const (
	accountFunding = "funding"
	accountBudget  = "budget"
	accountPayable = "payable"
	accountPaid    = "paid"
)

// line is one ledger line: a signed amount into (positive) or out of
// (negative) an account.
type line struct {
	account   string
	amountFen int64
}

// movement is a balanced set of ledger lines for one business event.
type movement struct {
	id             string
	kind           string // allocation, approval or settlement
	policyID       string
	disbursementID string // "" for allocations
	at             time.Time
	memo           string
	lines          []line
}

// transfer is the two-line movement of amount from one account to another.
func transfer(from, to string, amount int64) []line {
	return []line{{from, -amount}, {to, amount}}
}

// postMovement appends a movement and its lines to the ledger. The
// database refuses it at commit unless the lines sum to zero.
func postMovement(ctx context.Context, tx pgx.Tx, mv movement) error {
	var disb *string
	if mv.disbursementID != "" {
		disb = &mv.disbursementID
	}
	if _, err := tx.Exec(ctx, `INSERT INTO subsidy.movements (movement_id, kind, policy_id, disbursement_id, at, memo)
		VALUES ($1, $2, $3, $4, $5, $6)`, mv.id, mv.kind, mv.policyID, disb, mv.at, mv.memo); err != nil {
		return fmt.Errorf("post %s movement: %w", mv.kind, err)
	}
	accounts := make([]string, len(mv.lines))
	amounts := make([]int64, len(mv.lines))
	for i, l := range mv.lines {
		accounts[i], amounts[i] = l.account, l.amountFen
	}
	if _, err := tx.Exec(ctx, `INSERT INTO subsidy.ledger_lines (movement_id, account, policy_id, disbursement_id, amount_fen)
		SELECT $1, a, $2, $3, f FROM unnest($4::text[], $5::bigint[]) WITH ORDINALITY AS u(a, f, n) ORDER BY n`,
		mv.id, mv.policyID, disb, accounts, amounts); err != nil {
		return fmt.Errorf("post %s lines: %w", mv.kind, err)
	}
	return nil
}

// lockPolicy brings the policy's row in line with the configuration and
// locks it until the transaction ends: every approval under the policy
// happens under this lock, so its budget and yearly-cap checks are exact.
// When the configured budget differs from what the ledger has allocated,
// an allocation movement makes up the difference; a cut never takes back
// more than is left (approved money stays approved). It returns the
// remaining budget.
func lockPolicy(ctx context.Context, tx pgx.Tx, p *Policy, at time.Time) (int64, error) {
	def := p.definition()
	if _, err := tx.Exec(ctx, `INSERT INTO subsidy.policies (policy_id, name, trigger, budget_fen, definition, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (policy_id) DO NOTHING`,
		p.PolicyID, p.Name, p.Trigger, *p.BudgetFen, string(def), at); err != nil {
		return 0, fmt.Errorf("insert policy: %w", err)
	}
	var same bool
	if err := tx.QueryRow(ctx, `SELECT definition = $2::jsonb FROM subsidy.policies WHERE policy_id = $1 FOR NO KEY UPDATE`,
		p.PolicyID, string(def)).Scan(&same); err != nil {
		return 0, fmt.Errorf("lock policy: %w", err)
	}
	if !same {
		if _, err := tx.Exec(ctx, `UPDATE subsidy.policies SET name = $2, trigger = $3, budget_fen = $4, definition = $5, updated_at = $6
			WHERE policy_id = $1`, p.PolicyID, p.Name, p.Trigger, *p.BudgetFen, string(def), at); err != nil {
			return 0, fmt.Errorf("update policy: %w", err)
		}
	}
	var allocated, remaining int64
	if err := tx.QueryRow(ctx, `SELECT coalesce(-sum(amount_fen) FILTER (WHERE account = 'funding'), 0),
			coalesce(sum(amount_fen) FILTER (WHERE account = 'budget'), 0)
		FROM subsidy.ledger_lines WHERE policy_id = $1 AND account IN ('funding', 'budget')`, p.PolicyID).Scan(&allocated, &remaining); err != nil {
		return 0, fmt.Errorf("policy balance: %w", err)
	}
	delta := max(*p.BudgetFen-allocated, -remaining)
	if delta == 0 {
		return remaining, nil
	}
	memo := fmt.Sprintf("budget %d fen configured, %d allocated before", *p.BudgetFen, allocated)
	if err := postMovement(ctx, tx, movement{
		id: "allocation/" + p.PolicyID + "/" + uuid.NewString(), kind: "allocation", policyID: p.PolicyID,
		at: at, memo: memo, lines: transfer(accountFunding, accountBudget, delta),
	}); err != nil {
		return 0, err
	}
	return remaining + delta, nil
}

// hasEntitlement reports whether the enterprise already has an
// entitlement under the policy for the basis.
func hasEntitlement(ctx context.Context, tx pgx.Tx, policyID, uscc, basis string) (bool, error) {
	var found bool
	err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM subsidy.disbursements WHERE policy_id = $1 AND uscc = $2 AND basis = $3)`,
		policyID, uscc, basis).Scan(&found)
	if err != nil {
		return false, fmt.Errorf("find entitlement: %w", err)
	}
	return found, nil
}

// yearTotal is what the enterprise was approved under the policy in the
// calendar year (business time zone) of approval.
func yearTotal(ctx context.Context, tx pgx.Tx, policyID, uscc string, year int) (int64, error) {
	var total int64
	err := tx.QueryRow(ctx, `SELECT coalesce(sum(amount_fen), 0) FROM subsidy.disbursements
		WHERE policy_id = $1 AND uscc = $2 AND approval_year = $3`, policyID, uscc, year).Scan(&total)
	if err != nil {
		return 0, fmt.Errorf("yearly total: %w", err)
	}
	return total, nil
}

// disbursement is an approved entitlement.
type disbursement struct {
	id        string
	policyID  string
	uscc      string
	basis     string
	amountFen int64
	year      int
	approved  time.Time
	due       time.Time
	// From the payment history (lockDisbursement).
	attempts int
	settled  bool
	bankRef  string
}

// insertDisbursement stores the entitlement, books it (budget → payable)
// and records payment attempt 1.
func insertDisbursement(ctx context.Context, tx pgx.Tx, d disbursement, m eventRef) error {
	if _, err := tx.Exec(ctx, `INSERT INTO subsidy.disbursements (disbursement_id, policy_id, uscc, basis, amount_fen,
			approval_year, approved_at, due_at, event_type, event_source, event_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		d.id, d.policyID, d.uscc, d.basis, d.amountFen, d.year, d.approved, d.due, m.typ, m.source, m.id); err != nil {
		return fmt.Errorf("insert disbursement: %w", err)
	}
	if err := postMovement(ctx, tx, movement{
		id: "approval/" + d.id, kind: "approval", policyID: d.policyID, disbursementID: d.id, at: d.approved,
		memo: "approved " + d.uscc + " " + d.basis, lines: transfer(accountBudget, accountPayable, d.amountFen),
	}); err != nil {
		return err
	}
	return insertPaymentRequest(ctx, tx, d.id, 1, d.approved)
}

func insertPaymentRequest(ctx context.Context, tx pgx.Tx, id string, attempt int, at time.Time) error {
	if _, err := tx.Exec(ctx, `INSERT INTO subsidy.payment_requests (disbursement_id, attempt, requested_at) VALUES ($1, $2, $3)`,
		id, attempt, at); err != nil {
		return fmt.Errorf("insert payment request: %w", err)
	}
	return nil
}

// lockDisbursement reads a disbursement with its payment state and locks
// it until the transaction ends, so two callbacks for it never interleave.
func lockDisbursement(ctx context.Context, tx pgx.Tx, id string) (disbursement, bool, error) {
	var d disbursement
	var bankRef *string
	err := tx.QueryRow(ctx, `SELECT d.disbursement_id, d.policy_id, d.uscc, d.basis, d.amount_fen, d.due_at,
			(SELECT max(attempt) FROM subsidy.payment_requests r WHERE r.disbursement_id = d.disbursement_id),
			(SELECT bank_ref FROM subsidy.settlements s WHERE s.disbursement_id = d.disbursement_id)
		FROM subsidy.disbursements d WHERE d.disbursement_id = $1 FOR NO KEY UPDATE OF d`, id).
		Scan(&d.id, &d.policyID, &d.uscc, &d.basis, &d.amountFen, &d.due, &d.attempts, &bankRef)
	if errors.Is(err, pgx.ErrNoRows) {
		return d, false, nil
	}
	if err != nil {
		return d, false, fmt.Errorf("lock disbursement: %w", err)
	}
	if bankRef != nil {
		d.settled, d.bankRef = true, *bankRef
	}
	return d, true, nil
}

// settle records the treasury's settlement and books payable → paid.
func settle(ctx context.Context, tx pgx.Tx, d disbursement, p *contract.PaymentSettled, m eventRef, at time.Time) error {
	if _, err := tx.Exec(ctx, `INSERT INTO subsidy.settlements (disbursement_id, attempt, bank_ref, settled_at, recorded_at, event_source, event_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, d.id, d.attempts, p.BankRef, p.SettledTime(), at, m.source, m.id); err != nil {
		return fmt.Errorf("insert settlement: %w", err)
	}
	return postMovement(ctx, tx, movement{
		id: "settlement/" + d.id, kind: "settlement", policyID: d.policyID, disbursementID: d.id, at: p.SettledTime(),
		memo: "bank ref " + p.BankRef, lines: transfer(accountPayable, accountPaid, d.amountFen),
	})
}

// recordFailure records the failure of the current attempt and the next
// attempt's request.
func recordFailure(ctx context.Context, tx pgx.Tx, d disbursement, reason string, m eventRef, at time.Time) error {
	if _, err := tx.Exec(ctx, `INSERT INTO subsidy.payment_failures (disbursement_id, attempt, reason, failed_at, event_source, event_id)
		VALUES ($1, $2, $3, $4, $5, $6)`, d.id, d.attempts, reason, at, m.source, m.id); err != nil {
		return fmt.Errorf("insert payment failure: %w", err)
	}
	return insertPaymentRequest(ctx, tx, d.id, d.attempts+1, at)
}

// eventRef names the handled event in the rows it causes.
type eventRef struct{ typ, source, id string }
