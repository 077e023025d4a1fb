package contract

import "github.com/qinqing/qinqing/shared/event"

// Subscription says which event types a function consumes. It is the one
// source of truth for routing: the Helm chart's Triggers and the local
// router of `make run` are both derived from (and tested against) it.
type Subscription struct {
	Function string   // function name, e.g. "forum-signup"
	Types    []string // CloudEvents types delivered to it by the broker
	Jobs     []string // PingSource jobs ({"job": …}) delivered to it
}

// Catalog lists every function and what it consumes. Reply and follow-up
// types that no function consumes go to the broker for operators and are
// not listed here; the ones portals care about are consumed by
// webhook-egress, which sends them on as signed webhooks.
var Catalog = []Subscription{
	{Function: "forum-signup", Types: []string{
		TypeForumScheduled,
		TypeSignupRequested,
		TypeSignupCancelled,
	}, Jobs: []string{"forum-weekly"}},
	{Function: "appeal-router", Types: []string{
		TypeCalendarPublished,
		TypeAppealSubmitted,
		TypeAppealAccepted,
		TypeAppealReturned,
		TypeAppealReplied,
		TypeAppealRevisited,
	}},
	{Function: "deadline-check", Jobs: []string{"deadline-check", "monthly-review"}},
	{Function: "subsidy-disbursal", Types: []string{
		TypeHonourAwarded,
		TypeMilestoneApproved,
		TypeSubsidyRequested,
		TypePaymentSettled,
		TypePaymentFailed,
	}},
	{Function: "recycling-trade", Types: []string{
		TypeLicenceRegistered,
		TypeTradeRecorded,
		TypeTradesImported,
	}, Jobs: []string{"recycling-stats"}},
	{Function: "award-ceremony", Types: []string{
		TypeMetricsReported,
		TypeNominationSubmitted,
		TypeScoreRecorded,
	}, Jobs: []string{"award-ceremony"}},
	{Function: "webhook-egress", Types: EgressTypes},
	// webhook-ingress and open311 are fed by portals over plain HTTP, not
	// by the broker; dead-letter is every Trigger's deadLetterSink, not a
	// subscriber.
	{Function: "webhook-ingress"},
	{Function: "dead-letter"},
	{Function: "open311"},
}

// EgressTypes are the event types webhook-egress consumes and sends on to
// the portals as signed webhooks: the updates of appeals, signups,
// subsidies and imports.
var EgressTypes = []string{
	TypeAppealAssigned,
	TypeAppealUpdated,
	TypeAppealOverdue,
	TypeSignupConfirmed,
	TypeSignupWaitlisted,
	TypeSignupRejected,
	TypeSignupCancelAccepted,
	TypeSubsidyDecided,
	TypePaymentRecorded,
	TypeImportCompleted,
}

// Functions returns the names of all functions in catalogue order.
func Functions() []string {
	names := make([]string, len(Catalog))
	for i, s := range Catalog {
		names[i] = s.Function
	}
	return names
}

// Route returns the functions that consume an event of type t (for ping
// events, the function that runs job).
func Route(t, job string) []string {
	var out []string
	for _, s := range Catalog {
		if t == event.PingType {
			for _, j := range s.Jobs {
				if j == job {
					out = append(out, s.Function)
				}
			}
			continue
		}
		for _, ty := range s.Types {
			if ty == t {
				out = append(out, s.Function)
			}
		}
	}
	return out
}
