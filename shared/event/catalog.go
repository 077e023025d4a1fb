package event

// PingType is the CloudEvents type of Knative PingSource events. Cron jobs
// arrive with this type and data {"job": "<name>"}.
const PingType = "dev.knative.sources.ping"

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
		"cn.huzhou.forum.scheduled",
		"cn.huzhou.forum.signup.requested",
		"cn.huzhou.forum.signup.cancelled",
	}, Jobs: []string{"forum-weekly"}},
	{Function: "appeal-router", Types: []string{
		"cn.huzhou.calendar.published",
		"cn.huzhou.appeal.submitted",
		"cn.huzhou.appeal.accepted",
		"cn.huzhou.appeal.returned",
		"cn.huzhou.appeal.replied",
		"cn.huzhou.appeal.revisited",
	}},
	{Function: "deadline-check", Jobs: []string{"deadline-check", "monthly-review"}},
	{Function: "subsidy-disbursal", Types: []string{
		"cn.huzhou.honour.awarded",
		"cn.huzhou.project.milestone.approved",
		"cn.huzhou.subsidy.requested",
		"cn.huzhou.subsidy.payment.settled",
		"cn.huzhou.subsidy.payment.failed",
	}},
	{Function: "recycling-trade", Types: []string{
		"cn.huzhou.recycling.licence.registered",
		"cn.huzhou.recycling.trade.recorded",
		"cn.huzhou.recycling.trades.imported",
	}, Jobs: []string{"recycling-stats"}},
	{Function: "award-ceremony", Types: []string{
		"cn.huzhou.enterprise.metrics.reported",
		"cn.huzhou.award.nomination.submitted",
		"cn.huzhou.award.score.recorded",
	}, Jobs: []string{"award-ceremony"}},
	{Function: "webhook-egress", Types: []string{
		"cn.huzhou.appeal.assigned",
		"cn.huzhou.appeal.updated",
		"cn.huzhou.appeal.overdue",
		"cn.huzhou.forum.signup.confirmed",
		"cn.huzhou.forum.signup.waitlisted",
		"cn.huzhou.forum.signup.rejected",
		"cn.huzhou.forum.signup.cancelled.accepted",
		"cn.huzhou.subsidy.decided",
		"cn.huzhou.subsidy.payment.recorded",
		"cn.huzhou.recycling.import.completed",
	}},
	// webhook-ingress and open311 are fed by portals over plain HTTP, not
	// by the broker; dead-letter is every Trigger's deadLetterSink, not a
	// subscriber.
	{Function: "webhook-ingress"},
	{Function: "dead-letter"},
	{Function: "open311"},
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
		if t == PingType {
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
