package contract

import (
	"encoding/json"
	"time"

	"github.com/qinqing/qinqing/shared/event"
)

// Event types of subsidies (contract section 6; payment.overdue is
// announced by deadline-check, section 5).
const (
	TypeHonourAwarded     = "cn.huzhou.honour.awarded"
	TypeMilestoneApproved = "cn.huzhou.project.milestone.approved"
	TypeSubsidyRequested  = "cn.huzhou.subsidy.requested"
	TypeSubsidyDecided    = "cn.huzhou.subsidy.decided"
	// TypePaymentRequested asks the treasury to pay a disbursement.
	TypePaymentRequested = "cn.huzhou.subsidy.payment.requested"
	TypePaymentSettled   = "cn.huzhou.subsidy.payment.settled"
	TypePaymentFailed    = "cn.huzhou.subsidy.payment.failed"
	TypePaymentRecorded  = "cn.huzhou.subsidy.payment.recorded"
	// TypePaymentOverdue announces a payment not settled by its due time.
	TypePaymentOverdue = "cn.huzhou.subsidy.payment.overdue"
)

// HonourAwarded is an honour the city gives an enterprise (e.g. 金象金牛).
type HonourAwarded struct {
	USCC           string `json:"uscc"`
	EnterpriseName string `json:"enterpriseName"`
	Honour         string `json:"honour"`
	Year           *int   `json:"year"`
}

// Validate checks the payload.
func (p *HonourAwarded) Validate() error {
	return event.FirstError(
		event.ValidateUSCC("uscc", p.USCC),
		event.RequiredText("enterpriseName", p.EnterpriseName, 200),
		honourKey("honour", &p.Honour),
		validYear("year", p.Year),
	)
}

// Basis is the stored key of the entitlement a valid event claims.
func (p *HonourAwarded) Basis() string { return basisKey("honour", p.Honour, *p.Year) }

// Fields are a valid event's data as policies match on it.
func (p *HonourAwarded) Fields() map[string]any {
	return map[string]any{"uscc": p.USCC, "enterpriseName": p.EnterpriseName, "honour": p.Honour, "year": int64(*p.Year)}
}

// MilestoneApproved is a project milestone the investment office approved.
type MilestoneApproved struct {
	ProjectID     string `json:"projectId"`
	USCC          string `json:"uscc"`
	Milestone     string `json:"milestone"`
	InvestmentFen *int64 `json:"investmentFen"`
}

// Validate checks the payload.
func (p *MilestoneApproved) Validate() error {
	return event.FirstError(
		projectKey("projectId", &p.ProjectID),
		event.ValidateUSCC("uscc", p.USCC),
		milestoneKey("milestone", &p.Milestone),
		validFen("investmentFen", p.InvestmentFen, 0),
	)
}

// Basis is the stored key of the entitlement a valid event claims.
func (p *MilestoneApproved) Basis() string { return basisKey("milestone", p.ProjectID, p.Milestone) }

// Fields are a valid event's data as policies match on it.
func (p *MilestoneApproved) Fields() map[string]any {
	return map[string]any{"projectId": p.ProjectID, "uscc": p.USCC, "milestone": p.Milestone, "investmentFen": *p.InvestmentFen}
}

// SubsidyRequested asks for a subsidy under one named policy.
type SubsidyRequested struct {
	PolicyID  string `json:"policyId"`
	USCC      string `json:"uscc"`
	BasisID   string `json:"basisId"`
	AmountFen *int64 `json:"amountFen"`
}

// Validate checks the payload. A request for nothing is malformed.
func (p *SubsidyRequested) Validate() error {
	return event.FirstError(
		event.ValidateID("policyId", p.PolicyID),
		event.ValidateUSCC("uscc", p.USCC),
		basisIDKey("basisId", &p.BasisID),
		validFen("amountFen", p.AmountFen, 1),
	)
}

// Basis is the stored key of the entitlement a valid event claims.
func (p *SubsidyRequested) Basis() string { return basisKey("request", p.BasisID) }

// Fields are a valid event's data as policies match on it.
func (p *SubsidyRequested) Fields() map[string]any {
	return map[string]any{"policyId": p.PolicyID, "uscc": p.USCC, "basisId": p.BasisID, "amountFen": *p.AmountFen}
}

// PaymentSettled is the treasury's confirmation that a payment arrived.
type PaymentSettled struct {
	DisbursementID string `json:"disbursementId"`
	BankRef        string `json:"bankRef"`
	SettledAt      string `json:"settledAt"`

	settledAt time.Time
}

// SettledTime is settledAt, as Validate parsed it.
func (p *PaymentSettled) SettledTime() time.Time { return p.settledAt }

// Validate checks the payload and parses settledAt.
func (p *PaymentSettled) Validate() error {
	if err := event.FirstError(
		event.ValidateID("disbursementId", p.DisbursementID),
		event.RequiredText("bankRef", p.BankRef, 200),
	); err != nil {
		return err
	}
	var err error
	p.settledAt, err = event.ParseTime("settledAt", p.SettledAt)
	return err
}

// PaymentFailed is the treasury's report that a payment did not go through.
type PaymentFailed struct {
	DisbursementID string `json:"disbursementId"`
	Reason         string `json:"reason"`
}

// Validate checks the payload.
func (p *PaymentFailed) Validate() error {
	return event.FirstError(
		event.ValidateID("disbursementId", p.DisbursementID),
		event.RequiredText("reason", p.Reason, 1000),
	)
}

// Approval is one approved entitlement in subsidy.decided.
type Approval struct {
	DisbursementID string    `json:"disbursementId"`
	PolicyID       string    `json:"policyId"`
	AmountFen      int64     `json:"amountFen"`
	DueAt          time.Time `json:"dueAt"`
}

// SubsidyRejection is one refused policy in subsidy.decided.
type SubsidyRejection struct {
	PolicyID string `json:"policyId"`
	Reason   string `json:"reason"`
}

// SubsidyDecided is the data of subsidy.decided.
type SubsidyDecided struct {
	USCC       string             `json:"uscc"`
	Approvals  []Approval         `json:"approvals"`
	Rejections []SubsidyRejection `json:"rejections"`
}

// PaymentRequested is the data of subsidy.payment.requested.
type PaymentRequested struct {
	DisbursementID string `json:"disbursementId"`
	USCC           string `json:"uscc"`
	AmountFen      int64  `json:"amountFen"`
}

// PaymentRecorded is the data of subsidy.payment.recorded.
type PaymentRecorded struct {
	DisbursementID string `json:"disbursementId"`
	Status         string `json:"status"`
}

// PaymentOverdue is the data of subsidy.payment.overdue.
type PaymentOverdue struct {
	DisbursementID string    `json:"disbursementId"`
	USCC           string    `json:"uscc"`
	AmountFen      int64     `json:"amountFen"`
	DueAt          time.Time `json:"dueAt"`
}

func validYear(field string, y *int) error {
	if y == nil {
		return event.Invalid(field, "is required")
	}
	if *y < 2000 || *y > 2100 {
		return event.Invalid(field, "must be between 2000 and 2100, got %d", *y)
	}
	return nil
}

// validFen checks a required amount in fen. Non-integers never get here:
// decoding reports them as mistyped.
func validFen(field string, v *int64, min int64) error {
	if v == nil {
		return event.Invalid(field, "is required (an integer number of fen)")
	}
	if *v < min {
		if min == 1 {
			return event.Invalid(field, "must be a positive number of fen, got %d", *v)
		}
		return event.Invalid(field, "must not be negative, got %d", *v)
	}
	return nil
}

// basisKey is the stored form of an entitlement's basis: its kind and
// parts as a JSON array, so no two bases share a key whatever characters
// the parts hold (["milestone","P-7","production-started"]).
func basisKey(parts ...any) string {
	b, err := json.Marshal(parts)
	if err != nil {
		panic(err) // strings and ints always marshal
	}
	return string(b)
}

// The key forms of the identifiers that make an entitlement's basis
// (docs/runtime.md, "Canonical form"): normalised, then checked, so
// "Production-Started" and "ｐｒｏｄｕｃｔｉｏｎ-started" are the milestone
// "production-started", while "production-started " (trailing space),
// "production-started\u200b" and "production\u2010started" are refused.
func honourKey(field string, v *string) error    { return event.Name(field, v, 100, event.LowerCase) }
func projectKey(field string, v *string) error   { return event.Code(field, v, 100, event.UpperCase) }
func milestoneKey(field string, v *string) error { return event.Code(field, v, 100, event.LowerCase) }
func basisIDKey(field string, v *string) error   { return event.Code(field, v, 200, event.LowerCase) }

// SubsidyKeyForms puts a policy's match values in the key form of their
// field, so a policy written {milestone: Production-Started} matches the
// events that normalise to production-started.
var SubsidyKeyForms = map[string]func(field string, v *string) error{
	"honour": honourKey, "projectId": projectKey, "milestone": milestoneKey, "basisId": basisIDKey,
	"policyId": func(field string, v *string) error { return event.ValidateID(field, *v) },
}
