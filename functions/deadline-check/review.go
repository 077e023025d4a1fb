package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/qinqing/qinqing/shared/appeal"
	"github.com/qinqing/qinqing/shared/calendar"
	"github.com/qinqing/qinqing/shared/contract"
	"github.com/qinqing/qinqing/shared/runtime"
)

// reviewPeriod returns the month the review of a run at asOf covers, the
// calendar month before asOf's month in loc: its name ("2026-11") and
// bounds [from, to).
func reviewPeriod(asOf time.Time, loc *time.Location) (string, time.Time, time.Time) {
	return calendar.PreviousMonth(asOf, loc)
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
	return runtime.Reply(contract.TypeReviewPublished, contract.ReviewPublished{Period: period, Received: rv.Received,
		AssignedOnTimeRate: rv.AssignedOnTimeRate, RepliedOnTimeRate: rv.RepliedOnTimeRate, RevisitRate: rv.RevisitRate,
		SatisfactionRate: rv.SatisfactionRate, TopCategories: rv.TopCategories, Keys: keys}), nil
}

// loadCohort reads the appeals received in [from, to) with their history
// up to asOf, in time order (appeal.EachCohortStep).
func loadCohort(ctx context.Context, tx pgx.Tx, from, to, asOf time.Time) ([]record, error) {
	var recs []record
	err := appeal.EachCohortStep(ctx, tx, from, to, asOf, func(s *appeal.CohortStep) error {
		if n := len(recs); n == 0 || recs[n-1].id != s.AppealID {
			recs = append(recs, record{id: s.AppealID, category: s.Category, channel: s.Channel, county: s.County,
				received: s.ReceivedAt, assignDue: s.AssignDue, replyDue: s.FirstReplyDue})
		}
		last := &recs[len(recs)-1]
		last.steps = append(last.steps, transition{at: s.At, action: s.Action, to: s.To, department: s.Department,
			satisfaction: s.Satisfaction})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return recs, nil
}
