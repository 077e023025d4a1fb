package main

import (
	"context"
	"encoding/json"
	"errors"
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
// (business time zone), counting each trade by its occurredAt. The first
// run for a period and event time keeps its reply and document
// (recycling.stats); a later ping with the same time — a replay under a
// new id — answers them again, so it gives the same result whatever was
// recorded since. A ping with another time counts the trades on record
// when it runs. The document has no timestamp of its own, so the same
// trades give the same bytes.
func (f *Function) stats(ctx context.Context, tx pgx.Tx, m runtime.Meta) (runtime.Result, error) {
	now := m.Time.In(f.loc)
	to := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, f.loc)
	from := to.AddDate(0, -1, 0)
	period := from.Format("2006-01")
	key := path.Join("recycling", "stats", period+".json")
	// Runs for one period queue here, so a replay waits for the first run.
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, "recycling.stats/"+period); err != nil {
		return runtime.Result{}, fmt.Errorf("lock stats %s: %w", period, err)
	}
	var kept struct {
		reply    string
		document []byte
	}
	err := tx.QueryRow(ctx, `SELECT reply::text, document FROM recycling.stats WHERE period = $1 AND as_of = $2`, period, m.Time).
		Scan(&kept.reply, &kept.document)
	switch {
	case err == nil:
		// Written again: restores the document if the bucket lost it, or
		// if a run with another time overwrote it.
		if err := f.docs.Put(ctx, key, "application/json", kept.document); err != nil {
			return runtime.Result{}, err
		}
		return runtime.Reply(TypeStatsPublished, json.RawMessage(kept.reply)), nil
	case !errors.Is(err, pgx.ErrNoRows):
		return runtime.Result{}, fmt.Errorf("kept stats: %w", err)
	}
	rows, err := tx.Query(ctx, `SELECT producer_county, count(*), count(DISTINCT producer_uscc),
			coalesce(sum(battery_sets), 0)::bigint, coalesce(sum(weight_g), 0)::bigint, coalesce(sum(amount_fen), 0)::bigint
		FROM recycling.trades WHERE occurred_at >= $1 AND occurred_at < $2
		GROUP BY GROUPING SETS ((producer_county), ())`, from, to)
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
	body = append(body, '\n')
	reply, err := json.Marshal(StatsPublished{Period: period, Producers: all.Producers,
		BatterySets: all.BatterySets, WeightKg: all.WeightKg, AmountFen: all.AmountFen, Key: key})
	if err != nil {
		return runtime.Result{}, err
	}
	// Written before the commit under a fixed key: a retry overwrites it.
	if err := f.docs.Put(ctx, key, "application/json", body); err != nil {
		return runtime.Result{}, err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO recycling.stats (period, as_of, reply, document, event_source, event_id)
		VALUES ($1, $2, $3, $4, $5, $6)`, period, m.Time, string(reply), body, m.Source, m.ID); err != nil {
		return runtime.Result{}, fmt.Errorf("keep stats: %w", err)
	}
	return runtime.Reply(TypeStatsPublished, json.RawMessage(reply)), nil
}
