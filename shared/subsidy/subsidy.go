// Package subsidy is what other functions need of the subsidy ledger that
// functions/subsidy-disbursal keeps (schema subsidy, migration 0030): the
// overdue-payment part of the deadline check (contract section 5). store.go
// holds the statements other functions run on the ledger.
package subsidy

import "time"

// Event types about subsidy payments.
const (
	// TypePaymentRequested asks the treasury to pay a disbursement.
	TypePaymentRequested = "cn.huzhou.subsidy.payment.requested"
	// TypePaymentOverdue announces a payment not settled by its due time.
	TypePaymentOverdue = "cn.huzhou.subsidy.payment.overdue"
)

// PaymentOverdue is the data of cn.huzhou.subsidy.payment.overdue.
type PaymentOverdue struct {
	DisbursementID string    `json:"disbursementId"`
	USCC           string    `json:"uscc"`
	AmountFen      int64     `json:"amountFen"`
	DueAt          time.Time `json:"dueAt"`
}

// OverdueKey is the follow-up key of a disbursement's overdue announcement.
func OverdueKey(disbursementID string) string { return "payment-overdue/" + disbursementID }
