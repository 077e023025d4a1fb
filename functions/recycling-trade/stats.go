package main

import (
	"context"
	"encoding/json"
	"path"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/qinqing/qinqing/shared/calendar"
	"github.com/qinqing/qinqing/shared/contract"
	"github.com/qinqing/qinqing/shared/event"
	"github.com/qinqing/qinqing/shared/postgres"
	"github.com/qinqing/qinqing/shared/recycling"
	"github.com/qinqing/qinqing/shared/runtime"
)

// countyOrder is the contract's order of counties, used for the report's rows.
var countyOrder = []string{"city", "wuxing", "nanxun", "deqing", "changxing", "anji"}

// Totals are the figures regulators read for a month: producer units
// (distinct producer USCCs), battery sets, weight and amount.
type Totals struct {
	Trades      int64  `json:"trades"`
	Producers   int64  `json:"producers"`
	BatterySets int64  `json:"batterySets"`
	WeightKg    string `json:"weightKg"`
	AmountFen   int64  `json:"amountFen"`
}

// CountyTotals are one county's figures (by the producer's county).
type CountyTotals struct {
	County string `json:"county"`
	Name   string `json:"name"`
	Totals
}

// StatsDocument is recycling/stats/<yyyy-mm>.json.
type StatsDocument struct {
	Period   string `json:"period"`
	TimeZone string `json:"timeZone"`
	From     string `json:"from"`
	To       string `json:"to"`
	Totals
	Counties []CountyTotals `json:"counties"`
}

// stats publishes the totals of the calendar month before the event time
// (business time zone), counting each trade by its occurredAt. The first
// run for a period and event time keeps its reply and document
// (recycling.stats); a later ping with the same time — a replay under a
// new id — answers them again, so it gives the same result whatever was
// recorded since. A ping with another time counts the trades on record
// when it runs. The document has no timestamp of its own, so the same
// trades give the same bytes.
func (f *Function) stats(ctx context.Context, tx pgx.Tx, m runtime.Meta) (runtime.Result, error) {
	period, from, to := calendar.PreviousMonth(m.Time, f.loc)
	key := path.Join("recycling", "stats", period+".json")
	// Runs for one period queue here, so a replay waits for the first run.
	if err := postgres.LockXact(ctx, tx, "recycling.stats/"+period); err != nil {
		return runtime.Result{}, err
	}
	reply, document, found, err := keptStats(ctx, tx, period, m.Time)
	if err != nil {
		return runtime.Result{}, err
	}
	if found {
		// Written again: restores the document if the bucket lost it, or
		// if a run with another time overwrote it.
		if err := f.docs.Put(ctx, key, "application/json", document); err != nil {
			return runtime.Result{}, err
		}
		return runtime.Reply(contract.TypeRecyclingStatsPublished, json.RawMessage(reply)), nil
	}
	all, byCounty, err := monthTotals(ctx, tx, from, to)
	if err != nil {
		return runtime.Result{}, err
	}
	doc := StatsDocument{Period: period, TimeZone: f.loc.String(), From: from.Format(time.RFC3339), To: to.Format(time.RFC3339),
		Totals: all, Counties: make([]CountyTotals, 0, len(countyOrder))}
	for _, c := range countyOrder {
		t, ok := byCounty[c]
		if !ok {
			t.WeightKg = recycling.FormatWeight(0)
		}
		doc.Counties = append(doc.Counties, CountyTotals{County: c, Name: event.Counties[c], Totals: t})
	}
	body, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return runtime.Result{}, err
	}
	body = append(body, '\n')
	replyData, err := json.Marshal(contract.RecyclingStatsPublished{Period: period, Producers: all.Producers,
		BatterySets: all.BatterySets, WeightKg: all.WeightKg, AmountFen: all.AmountFen, Key: key})
	if err != nil {
		return runtime.Result{}, err
	}
	// Written before the commit under a fixed key: a retry overwrites it.
	if err := f.docs.Put(ctx, key, "application/json", body); err != nil {
		return runtime.Result{}, err
	}
	if err := keepStats(ctx, tx, m, period, replyData, body); err != nil {
		return runtime.Result{}, err
	}
	return runtime.Reply(contract.TypeRecyclingStatsPublished, json.RawMessage(replyData)), nil
}
