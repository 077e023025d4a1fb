package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/qinqing/qinqing/shared/event"
	"github.com/qinqing/qinqing/shared/recycling"
)

func upsertLicence(ctx context.Context, tx pgx.Tx, l *recycling.Licence, at time.Time) error {
	_, err := tx.Exec(ctx, `INSERT INTO recycling.licences (licence_no, collector_uscc, collector_name, valid_from, valid_to,
			capacity_g, registered_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (licence_no) DO UPDATE SET collector_uscc = EXCLUDED.collector_uscc,
			collector_name = EXCLUDED.collector_name, valid_from = EXCLUDED.valid_from, valid_to = EXCLUDED.valid_to,
			capacity_g = EXCLUDED.capacity_g, registered_at = EXCLUDED.registered_at`,
		l.LicenceNo, l.CollectorUSCC, l.CollectorName, l.ValidFrom, l.ValidTo, l.CapacityGrams, at)
	if err != nil {
		return fmt.Errorf("upsert licence: %w", err)
	}
	return nil
}

// getLicence returns the licence with the number, or nil. The share lock
// keeps a re-registration (a new capacity, another holder) from changing
// the licence while the trade is judged against it.
func getLicence(ctx context.Context, tx pgx.Tx, licenceNo string) (*recycling.Licence, error) {
	l := recycling.Licence{LicenceNo: licenceNo}
	err := tx.QueryRow(ctx, `SELECT collector_uscc, collector_name, valid_from::text, valid_to::text, capacity_g
		FROM recycling.licences WHERE licence_no = $1 FOR SHARE`, licenceNo).
		Scan(&l.CollectorUSCC, &l.CollectorName, &l.ValidFrom, &l.ValidTo, &l.CapacityGrams)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get licence: %w", err)
	}
	return &l, nil
}

// getLicences returns the licences with the given numbers, share-locked
// like getLicence.
func getLicences(ctx context.Context, tx pgx.Tx, numbers []string) (map[string]*recycling.Licence, error) {
	rows, err := tx.Query(ctx, `SELECT licence_no, collector_uscc, collector_name, valid_from::text, valid_to::text, capacity_g
		FROM recycling.licences WHERE licence_no = ANY($1) FOR SHARE`, numbers)
	if err != nil {
		return nil, fmt.Errorf("get licences: %w", err)
	}
	defer rows.Close()
	out := make(map[string]*recycling.Licence, len(numbers))
	for rows.Next() {
		var l recycling.Licence
		if err := rows.Scan(&l.LicenceNo, &l.CollectorUSCC, &l.CollectorName, &l.ValidFrom, &l.ValidTo, &l.CapacityGrams); err != nil {
			return nil, fmt.Errorf("get licences: %w", err)
		}
		out[l.LicenceNo] = &l
	}
	return out, rows.Err()
}

// tradeExists reports whether a trade with the manifest or the trade id is on record.
func tradeExists(ctx context.Context, tx pgx.Tx, manifestNo, tradeID string) (bool, error) {
	var found bool
	err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM recycling.trades WHERE manifest_no = $1)
		OR EXISTS (SELECT 1 FROM recycling.trades WHERE trade_id = $2)`, manifestNo, tradeID).Scan(&found)
	if err != nil {
		return false, fmt.Errorf("find trade: %w", err)
	}
	return found, nil
}

// addToYear adds grams to the collector's total for the year unless that
// would pass capacity, and reports whether it did. The UPDATE's condition
// is re-checked on the newest row version after waiting for a concurrent
// writer, so concurrent trades never pass the capacity together.
func addToYear(ctx context.Context, tx pgx.Tx, uscc string, year int, grams, capacity int64) (bool, error) {
	if _, err := tx.Exec(ctx, `INSERT INTO recycling.collector_years (collector_uscc, year) VALUES ($1, $2)
		ON CONFLICT DO NOTHING`, uscc, year); err != nil {
		return false, fmt.Errorf("collector year: %w", err)
	}
	tag, err := tx.Exec(ctx, `UPDATE recycling.collector_years SET total_g = total_g + $3
		WHERE collector_uscc = $1 AND year = $2 AND total_g + $3 <= $4`, uscc, year, grams, capacity)
	if err != nil {
		return false, fmt.Errorf("collector year: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// insertTrade stores a trade unless its manifest or trade id is taken,
// and reports whether it did.
func insertTrade(ctx context.Context, tx pgx.Tx, t *recycling.Trade, documents []event.Document, at time.Time) (bool, error) {
	if documents == nil {
		documents = []event.Document{}
	}
	docs, err := json.Marshal(documents)
	if err != nil {
		return false, err
	}
	tag, err := tx.Exec(ctx, `INSERT INTO recycling.trades (manifest_no, trade_id, producer_uscc, producer_name, producer_county,
			collector_uscc, licence_no, waste_code, battery_sets, weight_g, amount_fen, occurred_at, recorded_at, documents)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
		ON CONFLICT DO NOTHING`,
		t.ManifestNo, t.TradeID, t.ProducerUSCC, t.ProducerName, t.ProducerCounty, t.CollectorUSCC, t.LicenceNo,
		t.WasteCode, t.BatterySets, t.WeightGrams, t.AmountFen, t.OccurredAt, at, string(docs))
	if err != nil {
		return false, fmt.Errorf("insert trade: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}
