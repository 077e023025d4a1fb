package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/qinqing/qinqing/shared/appeal"
	"github.com/qinqing/qinqing/shared/runtime"
)

// ReviewPublished is the data of cn.huzhou.review.published.
type ReviewPublished struct {
	Period             string          `json:"period"`
	Received           int             `json:"received"`
	AssignedOnTimeRate float64         `json:"assignedOnTimeRate"`
	RepliedOnTimeRate  float64         `json:"repliedOnTimeRate"`
	RevisitRate        float64         `json:"revisitRate"`
	SatisfactionRate   float64         `json:"satisfactionRate"`
	TopCategories      []CategoryCount `json:"topCategories"`
	Keys               []string        `json:"keys"`
}

// Review is the monthly review (营商环境月评议), the content of
// review.json. Its cohort is the appeals received in the month (business
// time zone); every figure describes them as they stood at AsOf, the
// event time of the first run for the month. docs/appeals.md gives each
// rate's numerator and denominator.
type Review struct {
	Period             string              `json:"period"`
	From               time.Time           `json:"from"`
	To                 time.Time           `json:"to"`
	AsOf               time.Time           `json:"asOf"`
	Received           int                 `json:"received"`
	Assign             StageFigures        `json:"assign"`
	Reply              StageFigures        `json:"reply"`
	Replied            int                 `json:"replied"`
	Revisited          int                 `json:"revisited"`
	Revisits           RevisitFigures      `json:"revisits"`
	AssignedOnTimeRate float64             `json:"assignedOnTimeRate"`
	RepliedOnTimeRate  float64             `json:"repliedOnTimeRate"`
	RevisitRate        float64             `json:"revisitRate"`
	SatisfactionRate   float64             `json:"satisfactionRate"`
	TopCategories      []CategoryCount     `json:"topCategories"`
	Departments        []DepartmentFigures `json:"departments"`
	Channels           []NamedCount        `json:"channels"`
	Counties           []NamedCount        `json:"counties"`
}

// StageFigures splits the cohort by how a deadline went: met in time,
// missed, or not decided yet at AsOf (due later and not met so far).
type StageFigures struct {
	OnTime  int `json:"onTime"`
	Late    int `json:"late"`
	Pending int `json:"pending"`
}

// RevisitFigures counts the follow-up visits (回访) by verdict; an appeal
// reopened after an unsatisfied visit and visited again counts twice.
type RevisitFigures struct {
	Total              int `json:"total"`
	Satisfied          int `json:"satisfied"`
	BasicallySatisfied int `json:"basicallySatisfied"`
	Unsatisfied        int `json:"unsatisfied"`
}

// CategoryCount is one of the most frequent categories (common problems).
type CategoryCount struct {
	Category string `json:"category"`
	Count    int    `json:"count"`
}

// NamedCount is a count per channel or county.
type NamedCount struct {
	Name  string `json:"name"`
	Count int    `json:"count"`
}

// DepartmentFigures is one row of the per-department table; an appeal
// counts for the department it was assigned to at AsOf. OnTime, Overdue
// and Pending are its reply stage.
type DepartmentFigures struct {
	Department       string  `json:"department"`
	Received         int     `json:"received"`
	OnTime           int     `json:"onTime"`
	Overdue          int     `json:"overdue"`
	Pending          int     `json:"pending"`
	Revisits         int     `json:"revisits"`
	Satisfied        int     `json:"satisfied"`
	SatisfactionRate float64 `json:"satisfactionRate"`
}

// topCategories is how many categories the review names.
const topCategories = 5

// record is one appeal of the cohort with its history up to AsOf.
type record struct {
	id, category, channel, county string
	received, assignDue, replyDue time.Time // replyDue: the first promise, 10 working days after receipt
	steps                         []transition
}

// transition is one history row.
type transition struct {
	at           time.Time
	action       appeal.Action
	to           appeal.Status
	department   string
	satisfaction appeal.Satisfaction
}

// outcome is how a deadline went as of a time.
type outcome int

const (
	pending outcome = iota
	onTime
	late
)

// stateAt is the status and assignee after the last transition at or
// before t.
func (r record) stateAt(t time.Time) (appeal.Status, string) {
	var s appeal.Status
	var d string
	for _, st := range r.steps {
		if st.at.After(t) {
			break
		}
		s, d = st.to, st.department
	}
	return s, d
}

// assign: on time when a department had signed for the appeal (any status
// but assigned) at assignDue; late when it had not and assignDue has
// passed; otherwise on time if signed for by asOf, else pending.
func (r record) assign(asOf time.Time) outcome {
	if r.assignDue.Before(asOf) {
		if s, _ := r.stateAt(r.assignDue); s != appeal.Assigned {
			return onTime
		}
		return late
	}
	if s, _ := r.stateAt(asOf); s != appeal.Assigned {
		return onTime
	}
	return pending
}

// reply: on time when the first reply came by the first replyDue; late
// when it did not and that due time has passed by asOf; else pending.
func (r record) reply(asOf time.Time) outcome {
	for _, st := range r.steps {
		if st.action == appeal.Reply {
			if !st.at.After(r.replyDue) {
				return onTime
			}
			break
		}
	}
	if r.replyDue.Before(asOf) {
		return late
	}
	return pending
}

// Figures computes the review of the cohort as of asOf. It is pure: the
// same records give the same review.
func Figures(recs []record, period string, from, to, asOf time.Time) Review {
	rv := Review{Period: period, From: from, To: to, AsOf: asOf, Received: len(recs),
		TopCategories: []CategoryCount{}, Departments: []DepartmentFigures{}, Channels: []NamedCount{}, Counties: []NamedCount{}}
	categories, channels, counties := map[string]int{}, map[string]int{}, map[string]int{}
	depts := map[string]*DepartmentFigures{}
	for _, r := range recs {
		categories[strings.ToLower(strings.TrimSpace(r.category))]++
		channels[r.channel]++
		counties[r.county]++
		_, dept := r.stateAt(asOf)
		d := depts[dept]
		if d == nil {
			d = &DepartmentFigures{Department: dept}
			depts[dept] = d
		}
		d.Received++
		count(&rv.Assign, r.assign(asOf))
		switch o := r.reply(asOf); o {
		case onTime:
			d.OnTime++
			count(&rv.Reply, o)
		case late:
			d.Overdue++
			count(&rv.Reply, o)
		default:
			d.Pending++
			count(&rv.Reply, o)
		}
		replied, revisited := false, false
		for _, st := range r.steps {
			switch st.action {
			case appeal.Reply:
				replied = true
			case appeal.Revisit:
				revisited = true
				rv.Revisits.Total++
				d.Revisits++
				switch st.satisfaction {
				case appeal.Satisfied:
					rv.Revisits.Satisfied++
					d.Satisfied++
				case appeal.BasicallySatisfied:
					rv.Revisits.BasicallySatisfied++
					d.Satisfied++
				default:
					rv.Revisits.Unsatisfied++
				}
			}
		}
		if replied {
			rv.Replied++
			if revisited {
				rv.Revisited++
			}
		}
	}
	rv.AssignedOnTimeRate = rate(rv.Assign.OnTime, rv.Assign.OnTime+rv.Assign.Late)
	rv.RepliedOnTimeRate = rate(rv.Reply.OnTime, rv.Reply.OnTime+rv.Reply.Late)
	rv.RevisitRate = rate(rv.Revisited, rv.Replied)
	rv.SatisfactionRate = rate(rv.Revisits.Satisfied+rv.Revisits.BasicallySatisfied, rv.Revisits.Total)
	for _, c := range ranked(categories) {
		if len(rv.TopCategories) == topCategories {
			break
		}
		rv.TopCategories = append(rv.TopCategories, CategoryCount{Category: c.Name, Count: c.Count})
	}
	rv.Channels, rv.Counties = ranked(channels), ranked(counties)
	for _, d := range depts {
		d.SatisfactionRate = rate(d.Satisfied, d.Revisits)
		rv.Departments = append(rv.Departments, *d)
	}
	sort.Slice(rv.Departments, func(i, j int) bool {
		a, b := rv.Departments[i], rv.Departments[j]
		if a.Received != b.Received {
			return a.Received > b.Received
		}
		return a.Department < b.Department
	})
	return rv
}

func count(s *StageFigures, o outcome) {
	switch o {
	case onTime:
		s.OnTime++
	case late:
		s.Late++
	default:
		s.Pending++
	}
}

// rate is n/d rounded to 4 decimal places, 0 when d is 0.
func rate(n, d int) float64 {
	if d == 0 {
		return 0
	}
	return math.Round(float64(n)/float64(d)*10000) / 10000
}

// ranked orders counts by count descending, then name.
func ranked(m map[string]int) []NamedCount {
	out := make([]NamedCount, 0, len(m))
	for k, v := range m {
		out = append(out, NamedCount{Name: k, Count: v})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// reviewPeriod returns the calendar month before asOf's month in loc:
// its name ("2026-11") and bounds [from, to).
func reviewPeriod(asOf time.Time, loc *time.Location) (string, time.Time, time.Time) {
	l := asOf.In(loc)
	to := time.Date(l.Year(), l.Month(), 1, 0, 0, 0, 0, loc)
	from := to.AddDate(0, -1, 0)
	return from.Format("2006-01"), from, to
}

// monthlyReview publishes the review of the previous calendar month. The
// first run for a month computes it as of its event time and keeps the
// document (appeal.reviews); a later run for the same month — a replay,
// a second PingSource firing, a retry — publishes that document again, so
// figures and bytes are the same. The documents are written before the
// commit under fixed keys: a retry overwrites them.
func (f *Function) monthlyReview(ctx context.Context, tx pgx.Tx, m runtime.Meta) (runtime.Result, error) {
	period, from, to := reviewPeriod(m.Time, f.loc)
	doc, found, err := storedReview(ctx, tx, period)
	if err != nil {
		return runtime.Result{}, err
	}
	if !found {
		recs, err := loadCohort(ctx, tx, from, to, m.Time)
		if err != nil {
			return runtime.Result{}, err
		}
		b, err := json.MarshalIndent(Figures(recs, period, from, to, m.Time.In(f.loc)), "", "  ")
		if err != nil {
			return runtime.Result{}, err
		}
		if doc, err = keepReview(ctx, tx, m, period, append(b, '\n')); err != nil {
			return runtime.Result{}, err
		}
	}
	var rv Review
	if err := json.Unmarshal(doc, &rv); err != nil {
		return runtime.Result{}, fmt.Errorf("stored review %s: %w", period, err)
	}
	page, err := RenderHTML(rv)
	if err != nil {
		return runtime.Result{}, err
	}
	dir := path.Join("reports", period)
	keys := []string{path.Join(dir, "review.json"), path.Join(dir, "review.html")}
	if err := f.docs.Put(ctx, keys[0], "application/json", doc); err != nil {
		return runtime.Result{}, err
	}
	if err := f.docs.Put(ctx, keys[1], "text/html; charset=utf-8", page); err != nil {
		return runtime.Result{}, err
	}
	return runtime.Reply(appeal.TypeReviewPublished, ReviewPublished{Period: period, Received: rv.Received,
		AssignedOnTimeRate: rv.AssignedOnTimeRate, RepliedOnTimeRate: rv.RepliedOnTimeRate, RevisitRate: rv.RevisitRate,
		SatisfactionRate: rv.SatisfactionRate, TopCategories: rv.TopCategories, Keys: keys}), nil
}

func storedReview(ctx context.Context, tx pgx.Tx, period string) ([]byte, bool, error) {
	var doc string
	err := tx.QueryRow(ctx, `SELECT review_json FROM appeal.reviews WHERE period = $1`, period).Scan(&doc)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read review: %w", err)
	}
	return []byte(doc), true, nil
}

// keepReview stores the month's review unless a run at the same moment
// stored one first; it returns the stored document either way.
func keepReview(ctx context.Context, tx pgx.Tx, m runtime.Meta, period string, doc []byte) ([]byte, error) {
	tag, err := tx.Exec(ctx, `INSERT INTO appeal.reviews (period, as_of, review_json, source, event_id)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT (period) DO NOTHING`, period, m.Time, string(doc), m.Source, m.ID)
	if err != nil {
		return nil, fmt.Errorf("keep review: %w", err)
	}
	if tag.RowsAffected() == 1 {
		return doc, nil
	}
	stored, _, err := storedReview(ctx, tx, period)
	return stored, err
}

// loadCohort reads the appeals received in [from, to) with their history
// up to asOf, in time order. Its cost follows the month's appeals: an
// index-only range scan of appeals_received_cohort, then each appeal's
// history from history_by_appeal.
func loadCohort(ctx context.Context, tx pgx.Tx, from, to, asOf time.Time) ([]record, error) {
	rows, err := tx.Query(ctx, `SELECT a.appeal_id, a.category, a.channel, a.county, a.received_at, a.assign_due,
			a.first_reply_due, h.at, h.action, h.to_status, h.department, coalesce(h.satisfaction, '')
		FROM appeal.appeals a CROSS JOIN LATERAL (
			-- OFFSET 0 keeps this a per-appeal index lookup (history_by_appeal):
			-- joined flat, the planner may hash the whole history instead.
			SELECT h.at, h.seq, h.action, h.to_status, h.department, h.satisfaction FROM appeal.history h
			WHERE h.appeal_id = a.appeal_id AND h.at <= $3 OFFSET 0) h
		WHERE a.received_at >= $1 AND a.received_at < $2
		ORDER BY a.appeal_id, h.at, h.seq`, from, to, asOf)
	if err != nil {
		return nil, fmt.Errorf("review cohort: %w", err)
	}
	defer rows.Close()
	var recs []record
	for rows.Next() {
		var r record
		var t transition
		if err := rows.Scan(&r.id, &r.category, &r.channel, &r.county, &r.received, &r.assignDue, &r.replyDue,
			&t.at, &t.action, &t.to, &t.department, &t.satisfaction); err != nil {
			return nil, fmt.Errorf("review cohort: %w", err)
		}
		if n := len(recs); n == 0 || recs[n-1].id != r.id {
			recs = append(recs, r)
		}
		last := &recs[len(recs)-1]
		last.steps = append(last.steps, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("review cohort: %w", err)
	}
	return recs, nil
}
