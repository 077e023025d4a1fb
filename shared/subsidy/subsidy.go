// Package subsidy is what other functions need of the subsidy ledger that
// functions/subsidy-disbursal keeps (schema subsidy, migration 0030): the
// overdue-payment part of the deadline check (contract section 5). store.go
// holds the statements other functions run on the ledger; the event types
// and payloads are in shared/contract.
package subsidy

// OverdueKey is the follow-up key of a disbursement's overdue announcement.
func OverdueKey(disbursementID string) string { return "payment-overdue/" + disbursementID }
