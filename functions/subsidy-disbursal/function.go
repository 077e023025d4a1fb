package main

import (
	"context"
	"sort"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/qinqing/qinqing/shared/contract"
	"github.com/qinqing/qinqing/shared/postgres"
	"github.com/qinqing/qinqing/shared/runtime"
)

const name = "subsidy-disbursal"

// dueWorkingDays is the promise of 政策一键兑: the money is due 5 working
// days after approval.
const dueWorkingDays = 5

// Rejection reasons of subsidy.decided.
const (
	ReasonBudgetExhausted  = "budget_exhausted"
	ReasonCapExceeded      = "cap_exceeded"
	ReasonDuplicate        = "duplicate"
	ReasonNoMatchingPolicy = "no_matching_policy"
)

// Disbursement statuses of payment.recorded: the ledger account the money
// is in, or unknown for a callback naming no disbursement of ours.
const (
	StatusPayable = "payable"
	StatusPaid    = "paid"
	StatusUnknown = "unknown"
)

// Function decides entitlements under the configured policies and keeps
// the ledger of their payment.
type Function struct {
	env      *runtime.Env
	policies []*Policy // sorted by policy id: the order locks are taken in
}

// New returns the function for the given (validated) policies.
func New(env *runtime.Env, policies []Policy) *Function {
	f := &Function{env: env}
	for i := range policies {
		f.policies = append(f.policies, &policies[i])
	}
	sort.Slice(f.policies, func(i, j int) bool { return f.policies[i].PolicyID < f.policies[j].PolicyID })
	return f
}

// Runtime returns the handler table the shared runtime serves.
func (f *Function) Runtime() *runtime.Function {
	return &runtime.Function{
		Name: name,
		Handlers: map[string]runtime.Handler{
			contract.TypeHonourAwarded:     runtime.On(f.honour),
			contract.TypeMilestoneApproved: runtime.On(f.milestone),
			contract.TypeSubsidyRequested:  runtime.On(f.request),
			contract.TypePaymentSettled:    runtime.On(f.settled),
			contract.TypePaymentFailed:     runtime.On(f.failed),
		},
	}
}

// SyncPolicies writes every configured policy and its budget to the
// database, so operators see them without waiting for their first use
// (main runs it once the first event is answered, or RelayStartDelay after
// start). It is best effort: each approval brings its policy in line again
// under the lock.
func (f *Function) SyncPolicies(ctx context.Context) error {
	return postgres.InTx(ctx, f.env.Pool, func(tx pgx.Tx) error {
		for _, p := range f.policies {
			if _, err := lockPolicy(ctx, tx, p, time.Now()); err != nil {
				return err
			}
		}
		return nil
	})
}

func (f *Function) honour(ctx context.Context, tx pgx.Tx, m runtime.Meta, p *contract.HonourAwarded) (runtime.Result, error) {
	return f.decide(ctx, tx, m, claim{uscc: p.USCC, basis: p.Basis(), fields: p.Fields()})
}

func (f *Function) milestone(ctx context.Context, tx pgx.Tx, m runtime.Meta, p *contract.MilestoneApproved) (runtime.Result, error) {
	return f.decide(ctx, tx, m, claim{uscc: p.USCC, basis: p.Basis(), fields: p.Fields(), basisFen: *p.InvestmentFen})
}

func (f *Function) request(ctx context.Context, tx pgx.Tx, m runtime.Meta, p *contract.SubsidyRequested) (runtime.Result, error) {
	return f.decide(ctx, tx, m, claim{uscc: p.USCC, basis: p.Basis(), fields: p.Fields(), basisFen: *p.AmountFen, policyID: p.PolicyID})
}

// claim is what a triggering event asks for.
type claim struct {
	uscc     string
	basis    string
	fields   map[string]any // the event's data, to match policies on
	basisFen int64          // investmentFen, or the requested amountFen
	policyID string         // a request names its one policy
}

// decide approves or refuses, policy by policy, every policy whose trigger
// and match fit the event. Policies are locked in id order, so two events
// never wait on each other's locks in a cycle.
func (f *Function) decide(ctx context.Context, tx pgx.Tx, m runtime.Meta, c claim) (runtime.Result, error) {
	d := contract.SubsidyDecided{USCC: c.uscc, Approvals: []contract.Approval{}, Rejections: []contract.SubsidyRejection{}}
	var res runtime.Result
	year := m.Time.In(f.env.Loc).Year()
	for _, p := range f.policies {
		if c.policyID != "" && p.PolicyID != c.policyID || !p.fits(m.Type, c.fields) {
			continue
		}
		amount := p.amount(c.basisFen)
		remaining, err := lockPolicy(ctx, tx, p, m.Time)
		if err != nil {
			return res, err
		}
		reason, err := refusal(ctx, tx, p, c, amount, remaining, year)
		if err != nil {
			return res, err
		}
		if reason == "" && amount <= 0 {
			continue // nothing due under this policy (a rate of a tiny investment)
		}
		if reason != "" {
			d.Rejections = append(d.Rejections, contract.SubsidyRejection{PolicyID: p.PolicyID, Reason: reason})
			continue
		}
		cal, err := f.env.Calendar.Get(ctx, tx)
		if err != nil {
			return res, err
		}
		disb := disbursement{
			id: runtime.DeriveID("disbursement", p.PolicyID, c.uscc, c.basis), policyID: p.PolicyID, uscc: c.uscc,
			basis: c.basis, amountFen: amount, year: year, approved: m.Time, due: cal.DueAfter(m.Time, dueWorkingDays),
		}
		if err := insertDisbursement(ctx, tx, disb, eventRef{m.Type, m.Source, m.ID}); err != nil {
			return res, err
		}
		d.Approvals = append(d.Approvals, contract.Approval{DisbursementID: disb.id, PolicyID: p.PolicyID, AmountFen: amount, DueAt: disb.due})
		res.FollowUps = append(res.FollowUps, paymentRequest(disb, 1))
	}
	if len(d.Approvals) == 0 && len(d.Rejections) == 0 {
		d.Rejections = append(d.Rejections, contract.SubsidyRejection{PolicyID: "", Reason: ReasonNoMatchingPolicy})
	}
	res.Reply = runtime.Outgoing{Type: contract.TypeSubsidyDecided, Data: d}
	return res, nil
}

// refusal returns why the policy refuses the claim, or "": a duplicate
// first (also when nothing would be due now: the basis was decided
// before), then an exhausted budget, then the enterprise's yearly cap. No
// partial payments: an amount that does not fit whole is refused. The
// caller holds the policy's lock.
func refusal(ctx context.Context, tx pgx.Tx, p *Policy, c claim, amount, remaining int64, year int) (string, error) {
	dup, err := hasEntitlement(ctx, tx, p.PolicyID, c.uscc, c.basis)
	if err != nil || dup {
		return ReasonDuplicate, err
	}
	if amount <= 0 {
		return "", nil
	}
	if amount > remaining {
		return ReasonBudgetExhausted, nil
	}
	if limit := p.yearCap(); limit > 0 {
		total, err := yearTotal(ctx, tx, p.PolicyID, c.uscc, year)
		if err != nil {
			return "", err
		}
		if total+amount > limit {
			return ReasonCapExceeded, nil
		}
	}
	return "", nil
}

// paymentRequest is the follow-up asking the treasury to pay. Each attempt
// has its own key, so its own event id; the disbursementId stays the same.
func paymentRequest(d disbursement, attempt int) runtime.Outgoing {
	return runtime.Outgoing{
		Key:  "payment-requested/" + d.id + "/" + strconv.Itoa(attempt),
		Type: contract.TypePaymentRequested,
		Data: contract.PaymentRequested{DisbursementID: d.id, USCC: d.uscc, AmountFen: d.amountFen},
	}
}

// settled books a settlement: payable → paid, once. A second settlement
// of a paid disbursement changes nothing (and is logged when its bank
// reference differs: the treasury may have paid twice).
func (f *Function) settled(ctx context.Context, tx pgx.Tx, m runtime.Meta, p *contract.PaymentSettled) (runtime.Result, error) {
	d, found, err := lockDisbursement(ctx, tx, p.DisbursementID)
	if err != nil {
		return runtime.Result{}, err
	}
	switch {
	case !found:
		runtime.Logger(ctx).Warnw("settlement of an unknown disbursement", "disbursementId", p.DisbursementID, "bankRef", p.BankRef)
		return recorded(p.DisbursementID, StatusUnknown), nil
	case d.settled:
		if d.bankRef != p.BankRef {
			runtime.Logger(ctx).Warnw("second settlement with another bank reference", "disbursementId", d.id,
				"bankRef", p.BankRef, "settledBankRef", d.bankRef)
		}
		return recorded(d.id, StatusPaid), nil
	}
	if err := settle(ctx, tx, d, p, eventRef{m.Type, m.Source, m.ID}, m.Time); err != nil {
		return runtime.Result{}, err
	}
	return recorded(d.id, StatusPaid), nil
}

// failed records a failed payment: the money stays payable and a new
// payment.requested (a new event id, the same disbursementId) follows. A
// failure reported after the settlement changes nothing.
func (f *Function) failed(ctx context.Context, tx pgx.Tx, m runtime.Meta, p *contract.PaymentFailed) (runtime.Result, error) {
	d, found, err := lockDisbursement(ctx, tx, p.DisbursementID)
	if err != nil {
		return runtime.Result{}, err
	}
	switch {
	case !found:
		runtime.Logger(ctx).Warnw("payment failure of an unknown disbursement", "disbursementId", p.DisbursementID)
		return recorded(p.DisbursementID, StatusUnknown), nil
	case d.settled:
		runtime.Logger(ctx).Warnw("payment failure after settlement ignored", "disbursementId", d.id, "reason", p.Reason)
		return recorded(d.id, StatusPaid), nil
	}
	if err := recordFailure(ctx, tx, d, p.Reason, eventRef{m.Type, m.Source, m.ID}, m.Time); err != nil {
		return runtime.Result{}, err
	}
	res := recorded(d.id, StatusPayable)
	res.FollowUps = []runtime.Outgoing{paymentRequest(d, d.attempts+1)}
	return res, nil
}

func recorded(id, status string) runtime.Result {
	return runtime.Reply(contract.TypePaymentRecorded, contract.PaymentRecorded{DisbursementID: id, Status: status})
}
