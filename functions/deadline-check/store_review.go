package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/qinqing/qinqing/shared/runtime"
)

// storedReview returns the review document kept for period, if any
// (appeal.reviews, deadline-check's own table).
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
