package contract

import "github.com/qinqing/qinqing/shared/contract/admin"

// Event pairs an event type with the Go type of its data: Data is a zero
// value of the struct a producer marshals and a consumer decodes.
type Event struct {
	Type string
	Data any
}

// Events is the registry of every cn.huzhou.* event type and its data,
// by domain in contract order. Each type is listed once; a reply type
// used for several outcomes (signup.confirmed and signup.waitlisted)
// shares its struct. The tests hold it against the declared constants,
// the structs of this package, Catalog, the functions' code and
// ../shared/CONTRACT.md.
var Events = []Event{
	// Calendar and appeals (sections 2, 4).
	{TypeCalendarPublished, CalendarPublished{}},
	{TypeCalendarAccepted, CalendarAccepted{}},
	{TypeAppealSubmitted, AppealSubmitted{}},
	{TypeAppealAssigned, AppealAssignment{}},
	{TypeAppealAccepted, AppealAccepted{}},
	{TypeAppealReturned, AppealReturned{}},
	{TypeAppealReplied, AppealReplied{}},
	{TypeAppealRevisited, AppealRevisited{}},
	{TypeAppealUpdated, AppealUpdate{}},
	{TypeAppealRejected, AppealRejection{}},
	// Deadlines and the monthly review (section 5).
	{TypeAppealOverdue, OverdueAnnounced{}},
	{TypeDeadlineCheckCompleted, CheckCompleted{}},
	{TypeReviewPublished, ReviewPublished{}},
	// Forum (section 3).
	{TypeForumScheduled, ForumScheduled{}},
	{TypeForumScheduledAccepted, ForumScheduledAccepted{}},
	{TypeForumScheduledRejected, SignupRejection{}},
	{TypeSignupRequested, SignupRequested{}},
	{TypeSignupConfirmed, SignupReply{}},
	{TypeSignupWaitlisted, SignupReply{}},
	{TypeSignupRejected, SignupRejection{}},
	{TypeSignupCancelled, SignupCancelled{}},
	{TypeSignupCancelAccepted, SignupCancelAccepted{}},
	{TypeForumWeeklyCompleted, ForumWeeklyCompleted{}},
	// Subsidies (section 6).
	{TypeHonourAwarded, HonourAwarded{}},
	{TypeMilestoneApproved, MilestoneApproved{}},
	{TypeSubsidyRequested, SubsidyRequested{}},
	{TypeSubsidyDecided, SubsidyDecided{}},
	{TypePaymentRequested, PaymentRequested{}},
	{TypePaymentSettled, PaymentSettled{}},
	{TypePaymentFailed, PaymentFailed{}},
	{TypePaymentRecorded, PaymentRecorded{}},
	{TypePaymentOverdue, PaymentOverdue{}},
	// Recycling (section 7).
	{TypeLicenceRegistered, LicenceRegistered{}},
	{TypeLicenceAccepted, LicenceAccepted{}},
	{TypeTradeRecorded, TradeRecorded{}},
	{TypeTradeAccepted, TradeAccepted{}},
	{TypeTradeRejected, TradeRejected{}},
	{TypeTradesImported, TradesImported{}},
	{TypeImportCompleted, ImportCompleted{}},
	{TypeRecyclingStatsPublished, RecyclingStatsPublished{}},
	// Awards (section 8).
	{TypeMetricsReported, MetricsReported{}},
	{TypeMetricsAccepted, MetricsAccepted{}},
	{TypeNominationSubmitted, NominationSubmitted{}},
	{TypeNominationAccepted, NominationReply{}},
	{TypeNominationRejected, NominationReply{}},
	{TypeScoreRecorded, ScoreRecorded{}},
	{TypeScoreAccepted, ScoreReply{}},
	{TypeScoreRejected, ScoreReply{}},
	{TypeCeremonyPublished, CeremonyPublished{}},
	// Portal notifications (section 12).
	{TypePortalsNotified, PortalsNotified{}},
}

// Admin lists the wire types of the operator endpoints (not events),
// kept in the subpackage admin so that cmd/qinqing, which decodes them,
// imports nothing else of qinqing: each function's answer body.
var Admin = []any{admin.DeadLetters{}, admin.Deliveries{}}

// DataOf returns the zero value of the data of event type t, and false
// for a type that is not in Events.
func DataOf(t string) (any, bool) {
	for _, e := range Events {
		if e.Type == t {
			return e.Data, true
		}
	}
	return nil, false
}
