package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/qinqing/qinqing/shared/recycling"
	"github.com/qinqing/qinqing/shared/runtime"
)

// keptStats returns the reply and document a run for period at asOf
// kept, if one did.
func keptStats(ctx context.Context, tx pgx.Tx, period string, asOf time.Time) (reply string, document []byte, found bool, err error) {
	err = tx.QueryRow(ctx, `SELECT reply::text, document FROM recycling.stats WHERE period = $1 AND as_of = $2`, period, asOf).
		Scan(&reply, &document)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return "", nil, false, nil
	case err != nil:
		return "", nil, false, fmt.Errorf("kept stats: %w", err)
	}
	return reply, document, true, nil
}

// monthTotals counts the trades that occurred in [from, to): all of them
// and per producer county (absent: none). Weights are formatted in kg.
func monthTotals(ctx context.Context, tx pgx.Tx, from, to time.Time) (Totals, map[string]Totals, error) {
	rows, err := tx.Query(ctx, `SELECT producer_county, count(*), count(DISTINCT producer_uscc),
			coalesce(sum(battery_sets), 0)::bigint, coalesce(sum(weight_g), 0)::bigint, coalesce(sum(amount_fen), 0)::bigint
		FROM recycling.trades WHERE occurred_at >= $1 AND occurred_at < $2
		GROUP BY GROUPING SETS ((producer_county), ())`, from, to)
	if err != nil {
		return Totals{}, nil, fmt.Errorf("stats: %w", err)
	}
	defer rows.Close()
	var all Totals
	byCounty := map[string]Totals{}
	for rows.Next() {
		var county *string
		var t Totals
		var grams int64
		if err := rows.Scan(&county, &t.Trades, &t.Producers, &t.BatterySets, &grams, &t.AmountFen); err != nil {
			return Totals{}, nil, fmt.Errorf("stats: %w", err)
		}
		t.WeightKg = recycling.FormatWeight(grams)
		if county == nil {
			all = t
		} else {
			byCounty[*county] = t
		}
	}
	if err := rows.Err(); err != nil {
		return Totals{}, nil, fmt.Errorf("stats: %w", err)
	}
	if all.WeightKg == "" {
		all.WeightKg = recycling.FormatWeight(0)
	}
	return all, byCounty, nil
}

// keepStats stores the reply and document of the run for period at the
// event time.
func keepStats(ctx context.Context, tx pgx.Tx, m runtime.Meta, period string, reply, document []byte) error {
	if _, err := tx.Exec(ctx, `INSERT INTO recycling.stats (period, as_of, reply, document, event_source, event_id)
		VALUES ($1, $2, $3, $4, $5, $6)`, period, m.Time, string(reply), document, m.Source, m.ID); err != nil {
		return fmt.Errorf("keep stats: %w", err)
	}
	return nil
}
