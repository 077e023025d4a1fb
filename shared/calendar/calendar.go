// Package calendar implements the working-day calendar of contract section
// 2: Monday to Friday unless marked a holiday, plus weekend days marked as
// make-up working days (调休). The functions here are pure over a loaded
// set of marked days; store.go loads and replaces them in Postgres.
package calendar

import (
	"time"
)

// Date is a calendar date without time zone.
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// DateOf returns the calendar date of t in loc.
func DateOf(t time.Time, loc *time.Location) Date {
	y, m, d := t.In(loc).Date()
	return Date{y, m, d}
}

// ParseDate parses "2006-01-02".
func ParseDate(s string) (Date, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return Date{}, err
	}
	return Date{t.Year(), t.Month(), t.Day()}, nil
}

func (d Date) t() time.Time { return time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, time.UTC) }

// AddDays returns the date n days later (earlier for negative n).
func (d Date) AddDays(n int) Date {
	y, m, dd := d.t().AddDate(0, 0, n).Date()
	return Date{y, m, dd}
}

// Before reports whether d is before e.
func (d Date) Before(e Date) bool { return d.t().Before(e.t()) }

// Weekday returns the day of the week.
func (d Date) Weekday() time.Weekday { return d.t().Weekday() }

// String formats as "2006-01-02".
func (d Date) String() string { return d.t().Format(time.DateOnly) }

// EndOfDay is 23:59:59 of d in loc.
func (d Date) EndOfDay(loc *time.Location) time.Time {
	return time.Date(d.Year, d.Month, d.Day, 23, 59, 59, 0, loc)
}

// Kind marks a date in the published arrangement.
type Kind string

const (
	Holiday Kind = "holiday" // a weekday off
	Workday Kind = "workday" // a weekend day worked (调休)
)

// Calendar is the working-day calendar in a business time zone.
type Calendar struct {
	Loc    *time.Location
	Marked map[Date]Kind
}

// New returns a calendar over the marked days.
func New(loc *time.Location, marked map[Date]Kind) *Calendar {
	if marked == nil {
		marked = map[Date]Kind{}
	}
	return &Calendar{Loc: loc, Marked: marked}
}

// IsWorkingDay reports whether d is a working day.
func (c *Calendar) IsWorkingDay(d Date) bool {
	switch c.Marked[d] {
	case Holiday:
		return false
	case Workday:
		return true
	}
	wd := d.Weekday()
	return wd != time.Saturday && wd != time.Sunday
}

// NthWorkingDayAfter returns the n-th working day strictly after d (n ≥ 1).
func (c *Calendar) NthWorkingDayAfter(d Date, n int) Date {
	for n > 0 {
		d = d.AddDays(1)
		if c.IsWorkingDay(d) {
			n--
		}
	}
	return d
}

// DueAfter is "due n working days after t": 23:59:59 in the business time
// zone of the n-th working day strictly after t's calendar date there.
func (c *Calendar) DueAfter(t time.Time, n int) time.Time {
	return c.NthWorkingDayAfter(DateOf(t, c.Loc), n).EndOfDay(c.Loc)
}

// WorkingDaysBetween counts the working days after a up to and including b
// (0 when b is not after a). It is the contract's workingDaysOverdue when a
// is the due date and b the date of the check.
func (c *Calendar) WorkingDaysBetween(a, b Date) int {
	n := 0
	for d := a.AddDays(1); !b.Before(d); d = d.AddDays(1) {
		if c.IsWorkingDay(d) {
			n++
		}
	}
	return n
}
