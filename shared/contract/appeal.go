package contract

import (
	"strconv"
	"time"

	"github.com/qinqing/qinqing/shared/appeal"
	"github.com/qinqing/qinqing/shared/calendar"
	"github.com/qinqing/qinqing/shared/event"
)

// Event types of the working-day calendar and of appeals (contract
// sections 2 and 4; the overdue announcements of section 5 are in
// deadline.go).
const (
	TypeCalendarPublished = "cn.huzhou.calendar.published"
	TypeCalendarAccepted  = "cn.huzhou.calendar.accepted"

	TypeAppealSubmitted = "cn.huzhou.appeal.submitted"
	TypeAppealAssigned  = "cn.huzhou.appeal.assigned"
	TypeAppealAccepted  = "cn.huzhou.appeal.accepted"
	TypeAppealReturned  = "cn.huzhou.appeal.returned"
	TypeAppealReplied   = "cn.huzhou.appeal.replied"
	TypeAppealRevisited = "cn.huzhou.appeal.revisited"
	TypeAppealUpdated   = "cn.huzhou.appeal.updated"
	TypeAppealRejected  = "cn.huzhou.appeal.rejected"
)

// Limits on identifiers and free text of appeals: the ones appeal-router
// checks, and every producer of appeal.submitted checks before it answers
// a client (open311 checks a form with them).
const (
	maxAppealID    = 100
	MaxAppealTitle = 200
	MaxAppealText  = 4000
	maxCalendarDay = 366
)

// CalendarPublished is a year's holiday arrangement (contract section 2).
// Both lists are required (an explicit [] for none): a publication
// replaces the whole year, so a misspelt list must not silently empty it.
type CalendarPublished struct {
	Year     int       `json:"year"`
	Holidays *[]string `json:"holidays"`
	Workdays *[]string `json:"workdays"`

	holidays, workdays []calendar.Date
}

// HolidayDates are the holidays, as Validate parsed them.
func (p *CalendarPublished) HolidayDates() []calendar.Date { return p.holidays }

// WorkdayDates are the make-up working days, as Validate parsed them.
func (p *CalendarPublished) WorkdayDates() []calendar.Date { return p.workdays }

// Validate checks the year, that every date is a real date of that year,
// listed once, and not both a holiday and a make-up working day.
func (p *CalendarPublished) Validate() error {
	if p.Year < 2000 || p.Year > 2100 {
		return event.Invalid("year", "must be between 2000 and 2100, got %d", p.Year)
	}
	seen := map[calendar.Date]string{}
	parse := func(field string, list *[]string) ([]calendar.Date, error) {
		if list == nil {
			return nil, event.Invalid(field, "is required (use [] for none)")
		}
		if len(*list) > maxCalendarDay {
			return nil, event.Invalid(field, "at most %d dates, got %d", maxCalendarDay, len(*list))
		}
		out := make([]calendar.Date, 0, len(*list))
		for i, s := range *list {
			f := field + "[" + strconv.Itoa(i) + "]"
			d, err := calendar.ParseDate(s)
			if err != nil {
				return nil, event.Invalid(f, "is not a date (YYYY-MM-DD): %q", s)
			}
			if d.Year != p.Year {
				return nil, event.Invalid(f, "%s is not in %d", s, p.Year)
			}
			if prev, dup := seen[d]; dup {
				return nil, event.Invalid(f, "%s is already listed as %s", s, prev)
			}
			seen[d] = f
			out = append(out, d)
		}
		return out, nil
	}
	var err error
	if p.holidays, err = parse("holidays", p.Holidays); err != nil {
		return err
	}
	p.workdays, err = parse("workdays", p.Workdays)
	return err
}

// CalendarAccepted is the data of calendar.accepted: how many dates of
// each list the publication stored. (The fields are in alphabetical
// order, the order of the map it replaced, so stored replies stay byte
// for byte the same.)
type CalendarAccepted struct {
	Holidays int `json:"holidays"`
	Workdays int `json:"workdays"`
	Year     int `json:"year"`
}

// AppealEnterprise is the enterprise raising an appeal.
type AppealEnterprise struct {
	USCC string `json:"uscc"`
	Name string `json:"name"`
}

// AppealSubmitted is a new appeal (contract section 4), as appeal-router
// reads it and as forum-signup (one per problem of a signup) and open311
// (one per service request) send it. forumId and signupId are left out
// when empty: only forum appeals have them.
type AppealSubmitted struct {
	AppealID   string           `json:"appealId"`
	Enterprise AppealEnterprise `json:"enterprise"`
	County     string           `json:"county"`
	Title      string           `json:"title"`
	Detail     string           `json:"detail"`
	Category   string           `json:"category"`
	Channel    string           `json:"channel"`
	ForumID    string           `json:"forumId,omitempty"`
	SignupID   string           `json:"signupId,omitempty"`
}

// Channels an appeal arrives by.
const (
	ChannelForum   = "forum"
	ChannelPortal  = "portal"
	ChannelHotline = "hotline"
	ChannelVisit   = "visit"
)

var channels = map[string]bool{ChannelForum: true, ChannelPortal: true, ChannelHotline: true, ChannelVisit: true}

// Validate checks the payload. appealId is optional (derived from the
// event when absent); forumId is required for forum appeals.
func (p *AppealSubmitted) Validate() error {
	if err := event.FirstError(
		event.OptionalID("appealId", p.AppealID),
		event.ValidateUSCC("enterprise.uscc", p.Enterprise.USCC),
		event.RequiredText("enterprise.name", p.Enterprise.Name, MaxAppealTitle),
		event.ValidateCounty("county", p.County),
		event.RequiredText("title", p.Title, MaxAppealTitle),
		event.Text("detail", p.Detail, MaxAppealText),
		event.Text("category", p.Category, maxAppealID),
	); err != nil {
		return err
	}
	switch {
	case p.Channel == "":
		return event.Invalid("channel", "is required (forum, portal, hotline or visit)")
	case !channels[p.Channel]:
		return event.Invalid("channel", "unknown channel %q (want forum, portal, hotline or visit)", p.Channel)
	case p.Channel == ChannelForum && p.ForumID == "":
		return event.Invalid("forumId", "is required when channel is forum")
	}
	return event.FirstError(event.OptionalID("forumId", p.ForumID), event.OptionalID("signupId", p.SignupID))
}

// AppealAssignment is the data of appeal.assigned.
type AppealAssignment struct {
	AppealID   string    `json:"appealId"`
	Department string    `json:"department"`
	ReceivedAt time.Time `json:"receivedAt"`
	AssignDue  time.Time `json:"assignDue"`
	ReplyDue   time.Time `json:"replyDue"`
}

// AppealAccepted is appeal.accepted: the department signs for the appeal
// (交办 done).
type AppealAccepted struct {
	AppealID   string `json:"appealId"`
	Department string `json:"department"`
}

// Validate checks the payload.
func (p *AppealAccepted) Validate() error {
	return event.FirstError(event.ValidateID("appealId", p.AppealID), event.ValidateID("department", p.Department))
}

// AppealReturned is appeal.returned: not the department's business.
type AppealReturned struct {
	AppealID   string `json:"appealId"`
	Department string `json:"department"`
	Reason     string `json:"reason"`
}

// Validate checks the payload.
func (p *AppealReturned) Validate() error {
	return event.FirstError(event.ValidateID("appealId", p.AppealID), event.ValidateID("department", p.Department),
		event.RequiredText("reason", p.Reason, MaxAppealText))
}

// AppealReplied is appeal.replied: the department's answer.
type AppealReplied struct {
	AppealID   string `json:"appealId"`
	Department string `json:"department"`
	Reply      string `json:"reply"`
}

// Validate checks the payload.
func (p *AppealReplied) Validate() error {
	return event.FirstError(event.ValidateID("appealId", p.AppealID), event.ValidateID("department", p.Department),
		event.RequiredText("reply", p.Reply, MaxAppealText))
}

// AppealRevisited is appeal.revisited: the follow-up visit (回访).
type AppealRevisited struct {
	AppealID     string `json:"appealId"`
	Satisfaction string `json:"satisfaction"`
	Comment      string `json:"comment"`
}

// Validate checks the payload.
func (p *AppealRevisited) Validate() error {
	if err := event.ValidateID("appealId", p.AppealID); err != nil {
		return err
	}
	switch s := appeal.Satisfaction(p.Satisfaction); {
	case s == "":
		return event.Invalid("satisfaction", "is required (satisfied, basically_satisfied or unsatisfied)")
	case !s.Valid():
		return event.Invalid("satisfaction", "unknown satisfaction %q (want satisfied, basically_satisfied or unsatisfied)", p.Satisfaction)
	}
	return event.Text("comment", p.Comment, MaxAppealText)
}

// AppealUpdate is the data of appeal.updated.
type AppealUpdate struct {
	AppealID   string        `json:"appealId"`
	Status     appeal.Status `json:"status"`
	Department string        `json:"department"`
}

// AppealRejection is the data of appeal.rejected.
type AppealRejection struct {
	AppealID string `json:"appealId"`
	Reason   string `json:"reason"`
}
