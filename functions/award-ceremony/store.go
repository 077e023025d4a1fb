package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/qinqing/qinqing/shared/contract"
	"github.com/qinqing/qinqing/shared/postgres"
	"github.com/qinqing/qinqing/shared/runtime"
)

// upsertMetrics records a report unless one with a later event time is on
// file for the enterprise and year; it reports whether this one is now
// current. At equal event times the later arrival wins.
func upsertMetrics(ctx context.Context, tx pgx.Tx, m runtime.Meta, p *contract.MetricsReported) (bool, error) {
	var current bool
	err := tx.QueryRow(ctx, `INSERT INTO award.metrics AS cur (uscc, year, name, county, private, revenue_fen, tax_fen,
			employees, reported_at, event_source, event_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
		ON CONFLICT (uscc, year) DO UPDATE SET name = EXCLUDED.name, county = EXCLUDED.county,
			private = EXCLUDED.private, revenue_fen = EXCLUDED.revenue_fen, tax_fen = EXCLUDED.tax_fen,
			employees = EXCLUDED.employees, reported_at = EXCLUDED.reported_at,
			event_source = EXCLUDED.event_source, event_id = EXCLUDED.event_id
		WHERE cur.reported_at <= EXCLUDED.reported_at
		RETURNING true`,
		p.USCC, p.Year, p.Name, p.County, *p.Private, *p.RevenueFen, *p.TaxFen, *p.Employees, m.Time, m.Source, m.ID).Scan(&current)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("upsert metrics: %w", err)
	}
	return true, nil
}

// insertNomination stores a new nomination. When the id is taken it
// reports whether the stored nomination says the same (a resubmission,
// accepted again without change) or something else (a duplicate).
func insertNomination(ctx context.Context, tx pgx.Tx, m runtime.Meta, p *contract.NominationSubmitted) (bool, error) {
	n := p.Nominee
	tag, err := tx.Exec(ctx, `INSERT INTO award.nominations (nomination_id, year, category, nominee_name, nominee_uscc,
			nominee_county, nominee_department, nominated_by, citation, submitted_at, event_source, event_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
		ON CONFLICT (nomination_id) DO NOTHING`,
		p.NominationID, p.Year, p.Category, n.Name, n.USCC, n.County, n.Department, p.NominatedBy, p.Citation,
		m.Time, m.Source, m.ID)
	if err != nil {
		return false, fmt.Errorf("insert nomination: %w", err)
	}
	if tag.RowsAffected() == 1 {
		return true, nil
	}
	var same bool
	err = tx.QueryRow(ctx, `SELECT year = $2 AND category = $3 AND nominee_name = $4 AND nominee_uscc = $5
			AND nominee_county = $6 AND nominee_department = $7 AND nominated_by = $8 AND citation = $9
		FROM award.nominations WHERE nomination_id = $1`,
		p.NominationID, p.Year, p.Category, n.Name, n.USCC, n.County, n.Department, p.NominatedBy, p.Citation).Scan(&same)
	if err != nil {
		return false, fmt.Errorf("compare nomination: %w", err)
	}
	return same, nil
}

func nominationExists(ctx context.Context, tx pgx.Tx, id string) (bool, error) {
	var found bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM award.nominations WHERE nomination_id = $1)`, id).Scan(&found); err != nil {
		return false, fmt.Errorf("find nomination: %w", err)
	}
	return found, nil
}

// upsertScore records a judge's score unless the judge's score with a
// later event time is on file; it reports whether this one is now current.
// At equal event times the later arrival wins.
func upsertScore(ctx context.Context, tx pgx.Tx, m runtime.Meta, p *contract.ScoreRecorded) (bool, error) {
	var current bool
	err := tx.QueryRow(ctx, `INSERT INTO award.scores AS cur (nomination_id, judge, score, scored_at, event_source, event_id)
		VALUES ($1, $2, $3::numeric / 100, $4, $5, $6)
		ON CONFLICT (nomination_id, judge) DO UPDATE SET score = EXCLUDED.score, scored_at = EXCLUDED.scored_at,
			event_source = EXCLUDED.event_source, event_id = EXCLUDED.event_id
		WHERE cur.scored_at <= EXCLUDED.scored_at
		RETURNING true`, p.NominationID, p.Judge, p.Centi(), m.Time, m.Source, m.ID).Scan(&current)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("upsert score: %w", err)
	}
	return true, nil
}

// lockCeremonyYear serialises ceremony runs for one year until the
// transaction ends, so two runs at once never interleave their documents.
func lockCeremonyYear(ctx context.Context, tx pgx.Tx, year int) error {
	return postgres.LockXact(ctx, tx, fmt.Sprintf("award.ceremony/%d", year))
}

// topEnterprises returns up to limit private enterprises of the year in
// ranking order: revenue descending, tax descending, USCC ascending
// (byte order, whatever the database's collation).
func topEnterprises(ctx context.Context, tx pgx.Tx, year, limit int) ([]Ranked, error) {
	rows, err := tx.Query(ctx, `SELECT uscc, name, county, revenue_fen, tax_fen, employees FROM award.metrics
		WHERE year = $1 AND private
		ORDER BY revenue_fen DESC, tax_fen DESC, uscc COLLATE "C" ASC LIMIT $2`, year, limit)
	if err != nil {
		return nil, fmt.Errorf("top enterprises: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Ranked, error) {
		var e Ranked
		err := r.Scan(&e.USCC, &e.Name, &e.County, &e.RevenueFen, &e.TaxFen, &e.Employees)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("top enterprises: %w", err)
	}
	for i := range out {
		out[i].Rank = i + 1
	}
	return out, nil
}

// scoredNominations returns the year's nominations that have at least one
// judge score, with the sum (in hundredths of a point) and count of their
// scores. Unscored nominations have no mean and cannot win.
func scoredNominations(ctx context.Context, tx pgx.Tx, year int) ([]candidate, error) {
	rows, err := tx.Query(ctx, `SELECT n.nomination_id, n.category, n.nominee_name, n.nominee_uscc, n.nominee_county,
			n.nominee_department, n.nominated_by, n.citation, n.submitted_at,
			sum((s.score * 100)::bigint)::bigint, count(*)
		FROM award.nominations n JOIN award.scores s USING (nomination_id)
		WHERE n.year = $1
		GROUP BY n.nomination_id`, year)
	if err != nil {
		return nil, fmt.Errorf("scored nominations: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (candidate, error) {
		var c candidate
		err := r.Scan(&c.NominationID, &c.Category, &c.Name, &c.USCC, &c.County, &c.Department, &c.NominatedBy,
			&c.Citation, &c.submittedAt, &c.sum, &c.count)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("scored nominations: %w", err)
	}
	return out, nil
}

// saveCeremony records the latest published result of the year.
func saveCeremony(ctx context.Context, tx pgx.Tx, m runtime.Meta, year int, result contract.CeremonyPublished) error {
	_, err := tx.Exec(ctx, `INSERT INTO award.ceremonies (year, as_of, event_source, event_id, result, published_at)
		VALUES ($1, $2, $3, $4, $5, now())
		ON CONFLICT (year) DO UPDATE SET as_of = EXCLUDED.as_of, event_source = EXCLUDED.event_source,
			event_id = EXCLUDED.event_id, result = EXCLUDED.result, published_at = EXCLUDED.published_at`,
		year, m.Time, m.Source, m.ID, result)
	if err != nil {
		return fmt.Errorf("save ceremony: %w", err)
	}
	return nil
}
