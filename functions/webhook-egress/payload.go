package main

import (
	"bytes"
	"encoding/json"

	"github.com/qinqing/qinqing/shared/contract"
	"github.com/qinqing/qinqing/shared/event"
)

// Notification is an event to deliver: its data verbatim (the body's
// "data") and the fields that name its case.
type Notification struct {
	Raw            json.RawMessage
	AppealID       string `json:"appealId"`
	SignupID       string `json:"signupId"`
	DisbursementID string `json:"disbursementId"`
	Approvals      []struct {
		DisbursementID string `json:"disbursementId"`
	} `json:"approvals"`
}

// UnmarshalJSON keeps the data byte for byte besides decoding the case
// fields.
func (n *Notification) UnmarshalJSON(b []byte) error {
	type fields Notification
	var f fields
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	*n = Notification(f)
	n.Raw = append(json.RawMessage(nil), bytes.TrimSpace(b)...)
	return nil
}

// validateFor checks that the data names the case its type needs to be
// routed (the other fields are the producer's business, passed on as
// they are).
func (n *Notification) validateFor(typ string) error {
	switch typ {
	case contract.TypeAppealAssigned, contract.TypeAppealUpdated, contract.TypeAppealOverdue:
		return event.Required("appealId", n.AppealID)
	case contract.TypeSignupConfirmed, contract.TypeSignupWaitlisted, contract.TypeSignupCancelAccepted:
		return event.Required("signupId", n.SignupID)
	case contract.TypePaymentRecorded:
		return event.Required("disbursementId", n.DisbursementID)
	}
	return nil
}

// Outcome of delivering one event to one portal.
const (
	StatusDelivered = "delivered" // the portal answered 2xx
	StatusRetrying  = "retrying"  // timeout, network error, 429 or 5xx: Knative retries the event
	StatusFailed    = "failed"    // another 4xx, a redirect, a refused address: permanent
)

// Routing rules, as the reply names them.
const (
	RuleOwnPortal = "portal"     // the case came from a portal: only that portal, if subscribed
	RuleBroadcast = "subscribed" // the case did not come from a portal: every subscribed portal
	RuleUnknown   = "unknown"    // the case's origin is not on record: nobody
)
