package contract

import (
	"strconv"
	"strings"
	"time"

	"github.com/qinqing/qinqing/shared/event"
)

// Event types of the forum (contract section 3).
const (
	TypeForumScheduled         = "cn.huzhou.forum.scheduled"
	TypeForumScheduledAccepted = "cn.huzhou.forum.scheduled.accepted"
	TypeForumScheduledRejected = "cn.huzhou.forum.scheduled.rejected"
	TypeSignupRequested        = "cn.huzhou.forum.signup.requested"
	TypeSignupConfirmed        = "cn.huzhou.forum.signup.confirmed"
	TypeSignupWaitlisted       = "cn.huzhou.forum.signup.waitlisted"
	TypeSignupRejected         = "cn.huzhou.forum.signup.rejected"
	TypeSignupCancelled        = "cn.huzhou.forum.signup.cancelled"
	TypeSignupCancelAccepted   = "cn.huzhou.forum.signup.cancelled.accepted"
	TypeForumWeeklyCompleted   = "cn.huzhou.forum.weekly.completed"
)

// Signup modes: the enterprise asks for a seat itself, or is nominated
// (for the reserved seats).
const (
	ModeSelf      = "self"
	ModeNominated = "nominated"
)

// Limits on the sizes of a forum and of free text.
const (
	maxForumCapacity = 10000
	maxProblems      = 10
	maxProblemText   = 2000
	maxNominator     = 200
)

// ForumScheduled schedules (or reschedules) a forum.
type ForumScheduled struct {
	ForumID              string `json:"forumId"`
	Date                 string `json:"date"`
	Theme                string `json:"theme"`
	HostLeader           string `json:"hostLeader"`
	Venue                string `json:"venue"`
	County               string `json:"county"`
	Capacity             int    `json:"capacity"`
	ReservedForNominated int    `json:"reservedForNominated"`
	SignupDeadline       string `json:"signupDeadline"`

	date     time.Time
	deadline time.Time
}

// Day is the forum's date, as Validate parsed it.
func (p *ForumScheduled) Day() time.Time { return p.date }

// Deadline is the signup deadline, as Validate parsed it.
func (p *ForumScheduled) Deadline() time.Time { return p.deadline }

// Validate checks the payload and parses its date and deadline.
func (p *ForumScheduled) Validate() error {
	var err error
	if err = event.ValidateID("forumId", p.ForumID); err != nil {
		return err
	}
	if p.date, err = event.ParseDate("date", p.Date); err != nil {
		return err
	}
	if p.deadline, err = event.ParseTime("signupDeadline", p.SignupDeadline); err != nil {
		return err
	}
	return event.FirstError(
		event.RequiredText("theme", p.Theme, 200),
		event.RequiredText("hostLeader", p.HostLeader, 100),
		event.RequiredText("venue", p.Venue, 200),
		event.ValidateCounty("county", p.County),
		between("capacity", p.Capacity, 1, maxForumCapacity),
		between("reservedForNominated", p.ReservedForNominated, 0, p.Capacity),
	)
}

// ForumScheduledAccepted is the data of forum.scheduled.accepted.
type ForumScheduledAccepted struct {
	ForumID string `json:"forumId"`
}

// SignupEnterprise identifies the enterprise signing up.
type SignupEnterprise struct {
	USCC   string `json:"uscc"`
	Name   string `json:"name"`
	County string `json:"county"`
}

// Contact is the person the forum office calls.
type Contact struct {
	Name  string `json:"name"`
	Phone string `json:"phone"`
}

// Problem is a difficulty the enterprise brings to the forum; each becomes
// an appeal (an appeal.submitted follow-up).
type Problem struct {
	Title    string `json:"title"`
	Detail   string `json:"detail"`
	Category string `json:"category"`
}

// SignupRequested is an enterprise's request for a seat.
type SignupRequested struct {
	ForumID     string           `json:"forumId"`
	Enterprise  SignupEnterprise `json:"enterprise"`
	Contact     Contact          `json:"contact"`
	Mode        string           `json:"mode"`
	NominatedBy string           `json:"nominatedBy"`
	Topic       string           `json:"topic"`
	Problems    []Problem        `json:"problems"`
	Documents   []event.Document `json:"documents"`
}

// Validate checks the payload.
func (p *SignupRequested) Validate() error {
	if err := event.FirstError(
		event.ValidateID("forumId", p.ForumID),
		event.ValidateUSCC("enterprise.uscc", p.Enterprise.USCC),
		event.RequiredText("enterprise.name", p.Enterprise.Name, 200),
		event.ValidateCounty("enterprise.county", p.Enterprise.County),
		event.RequiredText("contact.name", p.Contact.Name, 100),
		validPhone("contact.phone", p.Contact.Phone),
		event.RequiredText("topic", p.Topic, 500),
		event.Text("nominatedBy", p.NominatedBy, maxNominator),
	); err != nil {
		return err
	}
	switch p.Mode {
	case ModeSelf:
	case ModeNominated:
		if err := event.Required("nominatedBy", p.NominatedBy); err != nil {
			return event.Invalid("nominatedBy", "is required when mode is nominated")
		}
	case "":
		return event.Invalid("mode", "is required (self or nominated)")
	default:
		return event.Invalid("mode", "unknown mode %q (want self or nominated)", p.Mode)
	}
	if len(p.Problems) > maxProblems {
		return event.Invalid("problems", "at most %d problems, got %d", maxProblems, len(p.Problems))
	}
	for i, pr := range p.Problems {
		f := "problems[" + strconv.Itoa(i) + "]"
		if err := event.FirstError(
			event.RequiredText(f+".title", pr.Title, 200),
			event.Text(f+".detail", pr.Detail, maxProblemText), event.Text(f+".category", pr.Category, 100),
		); err != nil {
			return err
		}
	}
	return event.ValidateDocuments("documents", p.Documents)
}

// SignupReply is the data of signup.confirmed and signup.waitlisted, as a
// reply and as the follow-up announcing a promotion from the waitlist.
type SignupReply struct {
	SignupID         string         `json:"signupId"`
	ForumID          string         `json:"forumId"`
	USCC             string         `json:"uscc"`
	Status           string         `json:"status"`
	WaitlistPosition int            `json:"waitlistPosition"`
	Uploads          []event.Upload `json:"uploads"`
}

// SignupRejection is the data of signup.rejected and scheduled.rejected.
type SignupRejection struct {
	ForumID  string `json:"forumId"`
	USCC     string `json:"uscc,omitempty"`
	Reason   string `json:"reason"`
	SignupID string `json:"signupId,omitempty"`
}

// SignupCancelled withdraws an enterprise's signup.
type SignupCancelled struct {
	ForumID string `json:"forumId"`
	USCC    string `json:"uscc"`
}

// Validate checks the payload.
func (p *SignupCancelled) Validate() error {
	return event.FirstError(event.ValidateID("forumId", p.ForumID), event.ValidateUSCC("uscc", p.USCC))
}

// SignupCancelAccepted is the data of signup.cancelled.accepted.
type SignupCancelAccepted struct {
	SignupID string `json:"signupId"`
}

// ForumWeeklyCompleted is the data of forum.weekly.completed: the forums
// the weekly job closed.
type ForumWeeklyCompleted struct {
	Closed []ClosedForum `json:"closed"`
}

// ClosedForum is one entry of weekly.completed.
type ClosedForum struct {
	ForumID    string `json:"forumId"`
	Confirmed  int    `json:"confirmed"`
	Waitlisted int    `json:"waitlisted"`
	RosterKey  string `json:"rosterKey"`
}

func between(field string, v, lo, hi int) error {
	if v < lo || v > hi {
		return event.Invalid(field, "must be between %d and %d, got %d", lo, hi, v)
	}
	return nil
}

func validPhone(field, phone string) error {
	if err := event.Required(field, phone); err != nil {
		return err
	}
	digits := 0
	for _, c := range phone {
		switch {
		case c >= '0' && c <= '9':
			digits++
		case strings.ContainsRune("+- ()", c):
		default:
			return event.Invalid(field, "is not a phone number")
		}
	}
	if digits < 5 || digits > 20 {
		return event.Invalid(field, "is not a phone number")
	}
	return nil
}
