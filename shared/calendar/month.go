package calendar

import "time"

// PreviousMonth returns the calendar month before t's month in loc, the
// period of a monthly report run at t: its name ("2026-11") and its
// bounds [from, to), midnight on the first of each month in loc.
func PreviousMonth(t time.Time, loc *time.Location) (name string, from, to time.Time) {
	l := t.In(loc)
	to = time.Date(l.Year(), l.Month(), 1, 0, 0, 0, 0, loc)
	from = to.AddDate(0, -1, 0)
	return from.Format("2006-01"), from, to
}
