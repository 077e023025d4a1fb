package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/qinqing/qinqing/shared/event"
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

// StatsPublished is the data of stats.published.
type StatsPublished struct {
	Period      string `json:"period"`
	Producers   int64  `json:"producers"`
	BatterySets int64  `json:"batterySets"`
	WeightKg    string `json:"weightKg"`
	AmountFen   int64  `json:"amountFen"`
	Key         string `json:"key"`
}

// stats publishes the totals of the calendar month before the event time
// (business time zone), counting each trade by its occurredAt, as of the
// event time: only trades recorded by then (recorded_at, the time of the
// event that recorded them) count, so a replay of the ping, whenever it
// runs, gives the same reply and document. The document has no timestamp
// of its own, so the same trades give the same bytes.
func (f *Function) stats(ctx context.Context, tx pgx.Tx, m runtime.Meta) (runtime.Result, error) {
	now := m.Time.In(f.loc)
	to := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, f.loc)
	from := to.AddDate(0, -1, 0)
	period := from.Format("2006-01")
	rows, err := tx.Query(ctx, `SELECT producer_county, count(*), count(DISTINCT producer_uscc),
			coalesce(sum(battery_sets), 0)::bigint, coalesce(sum(weight_g), 0)::bigint, coalesce(sum(amount_fen), 0)::bigint
		FROM recycling.trades WHERE occurred_at >= $1 AND occurred_at < $2 AND recorded_at <= $3
		GROUP BY GROUPING SETS ((producer_county), ())`, from, to, m.Time)
	if err != nil {
		return runtime.Result{}, fmt.Errorf("stats: %w", err)
	}
	defer rows.Close()
	var all Totals
	byCounty := map[string]Totals{}
	for rows.Next() {
		var county *string
		var t Totals
		var grams int64
		if err := rows.Scan(&county, &t.Trades, &t.Producers, &t.BatterySets, &grams, &t.AmountFen); err != nil {
			return runtime.Result{}, fmt.Errorf("stats: %w", err)
		}
		t.WeightKg = recycling.FormatWeight(grams)
		if county == nil {
			all = t
		} else {
			byCounty[*county] = t
		}
	}
	if err := rows.Err(); err != nil {
		return runtime.Result{}, fmt.Errorf("stats: %w", err)
	}
	if all.WeightKg == "" {
		all.WeightKg = recycling.FormatWeight(0)
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
	key := path.Join("recycling", "stats", period+".json")
	// Written before the commit under a fixed key: a retry overwrites it.
	if err := f.docs.Put(ctx, key, "application/json", append(body, '\n')); err != nil {
		return runtime.Result{}, err
	}
	return runtime.Reply(TypeStatsPublished, StatsPublished{Period: period, Producers: all.Producers,
		BatterySets: all.BatterySets, WeightKg: all.WeightKg, AmountFen: all.AmountFen, Key: key}), nil
}
