package main

import (
	"strconv"

	"github.com/qinqing/qinqing/shared/appeal"
	"github.com/qinqing/qinqing/shared/calendar"
	"github.com/qinqing/qinqing/shared/event"
)

// Limits on identifiers and free text.
const (
	maxID          = 100
	maxTitle       = 200
	maxText        = 4000
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

// Enterprise is the enterprise raising an appeal.
type Enterprise struct {
	USCC string `json:"uscc"`
	Name string `json:"name"`
}

// Submitted is a new appeal (contract section 4).
type Submitted struct {
	AppealID   string     `json:"appealId"`
	Enterprise Enterprise `json:"enterprise"`
	County     string     `json:"county"`
	Title      string     `json:"title"`
	Detail     string     `json:"detail"`
	Category   string     `json:"category"`
	Channel    string     `json:"channel"`
	ForumID    string     `json:"forumId"`
	SignupID   string     `json:"signupId"`
}

// Channels an appeal arrives by.
var channels = map[string]bool{"forum": true, "portal": true, "hotline": true, "visit": true}

// Validate checks the payload. appealId is optional (derived from the
// event when absent); forumId is required for forum appeals.
func (p *Submitted) Validate() error {
	if err := event.FirstError(
		event.OptionalID("appealId", p.AppealID),
		event.ValidateUSCC("enterprise.uscc", p.Enterprise.USCC),
		event.RequiredText("enterprise.name", p.Enterprise.Name, maxTitle),
		event.ValidateCounty("county", p.County),
		event.RequiredText("title", p.Title, maxTitle),
		event.Text("detail", p.Detail, maxText),
		event.Text("category", p.Category, maxID),
	); err != nil {
		return err
	}
	switch {
	case p.Channel == "":
		return event.Invalid("channel", "is required (forum, portal, hotline or visit)")
	case !channels[p.Channel]:
		return event.Invalid("channel", "unknown channel %q (want forum, portal, hotline or visit)", p.Channel)
	case p.Channel == "forum" && p.ForumID == "":
		return event.Invalid("forumId", "is required when channel is forum")
	}
	return event.FirstError(event.OptionalID("forumId", p.ForumID), event.OptionalID("signupId", p.SignupID))
}

// Accepted is cn.huzhou.appeal.accepted: the department signs for the
// appeal (交办 done).
type Accepted struct {
	AppealID   string `json:"appealId"`
	Department string `json:"department"`
}

// Validate checks the payload.
func (p *Accepted) Validate() error {
	return event.FirstError(event.ValidateID("appealId", p.AppealID), event.ValidateID("department", p.Department))
}

// Returned is cn.huzhou.appeal.returned: not the department's business.
type Returned struct {
	AppealID   string `json:"appealId"`
	Department string `json:"department"`
	Reason     string `json:"reason"`
}

// Validate checks the payload.
func (p *Returned) Validate() error {
	return event.FirstError(event.ValidateID("appealId", p.AppealID), event.ValidateID("department", p.Department),
		event.RequiredText("reason", p.Reason, maxText))
}

// Replied is cn.huzhou.appeal.replied: the department's answer.
type Replied struct {
	AppealID   string `json:"appealId"`
	Department string `json:"department"`
	Reply      string `json:"reply"`
}

// Validate checks the payload.
func (p *Replied) Validate() error {
	return event.FirstError(event.ValidateID("appealId", p.AppealID), event.ValidateID("department", p.Department),
		event.RequiredText("reply", p.Reply, maxText))
}

// Revisited is cn.huzhou.appeal.revisited: the follow-up visit (回访).
type Revisited struct {
	AppealID     string `json:"appealId"`
	Satisfaction string `json:"satisfaction"`
	Comment      string `json:"comment"`
}

// Validate checks the payload.
func (p *Revisited) Validate() error {
	if err := event.ValidateID("appealId", p.AppealID); err != nil {
		return err
	}
	switch s := appeal.Satisfaction(p.Satisfaction); {
	case s == "":
		return event.Invalid("satisfaction", "is required (satisfied, basically_satisfied or unsatisfied)")
	case !s.Valid():
		return event.Invalid("satisfaction", "unknown satisfaction %q (want satisfied, basically_satisfied or unsatisfied)", p.Satisfaction)
	}
	return event.Text("comment", p.Comment, maxText)
}
