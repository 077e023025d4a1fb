package main

import (
	"bytes"
	"context"
	endian "encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
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

// Bulk import: the SQL of a chunk.

// lockYears creates the collectors' year rows that are missing, locks them
// all (in key order, so two chunks never deadlock on them) and fills keys
// with their totals. Single trades wait for the chunk's commit.
func lockYears(ctx context.Context, tx pgx.Tx, keys map[yearKey]int64) error {
	if len(keys) == 0 {
		return nil
	}
	sorted := make([]yearKey, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Slice(sorted, func(i, j int) bool {
		if sorted[i].uscc != sorted[j].uscc {
			return sorted[i].uscc < sorted[j].uscc
		}
		return sorted[i].year < sorted[j].year
	})
	usccs, years := make([]string, len(sorted)), make([]int32, len(sorted))
	for i, k := range sorted {
		usccs[i], years[i] = k.uscc, int32(k.year)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO recycling.collector_years (collector_uscc, year)
		SELECT * FROM unnest($1::text[], $2::int[]) ON CONFLICT DO NOTHING`, usccs, years); err != nil {
		return fmt.Errorf("collector years: %w", err)
	}
	rows, err := tx.Query(ctx, `SELECT y.collector_uscc, y.year, y.total_g FROM recycling.collector_years y
		JOIN unnest($1::text[], $2::int[]) AS k(uscc, year) ON y.collector_uscc = k.uscc AND y.year = k.year
		ORDER BY y.collector_uscc, y.year FOR UPDATE OF y`, usccs, years)
	if err != nil {
		return fmt.Errorf("lock collector years: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k yearKey
		var total int64
		if err := rows.Scan(&k.uscc, &k.year, &total); err != nil {
			return fmt.Errorf("lock collector years: %w", err)
		}
		keys[k] = total
	}
	return rows.Err()
}

// copyTrades COPYs the accepted rows into recycling.trades after a
// savepoint, encoded in COPY's binary format into one buffer: no value
// per field is boxed or allocated, and the server parses no text. A row
// whose manifest or trade id is on record fails the COPY with a unique
// violation; the caller rolls back to the savepoint.
func copyTrades(ctx context.Context, tx pgx.Tx, b *batch, rows []importRow) error {
	if _, err := tx.Exec(ctx, `SAVEPOINT chunk`); err != nil {
		return fmt.Errorf("savepoint: %w", err)
	}
	buf := make([]byte, 0, 32+len(rows)*224)
	buf = append(buf, "PGCOPY\n\xff\r\n\x00"...)
	buf = endian.BigEndian.AppendUint32(buf, 0) // flags
	buf = endian.BigEndian.AppendUint32(buf, 0) // header extension length
	n := 0
	for i := range rows {
		r := &rows[i]
		if r.invalid || r.reason != "" {
			continue
		}
		n++
		t := &r.trade
		buf = endian.BigEndian.AppendUint16(buf, 14)
		for _, s := range [...]string{t.ManifestNo, t.TradeID, t.ProducerUSCC, t.ProducerName, t.ProducerCounty,
			t.CollectorUSCC, t.LicenceNo, t.WasteCode} {
			buf = endian.BigEndian.AppendUint32(buf, uint32(len(s)))
			buf = append(buf, s...)
		}
		for _, v := range [...]int64{t.BatterySets, t.WeightGrams, t.AmountFen, pgMicros(t.OccurredAt), pgMicros(b.asOf)} {
			buf = endian.BigEndian.AppendUint32(buf, 8)
			buf = endian.BigEndian.AppendUint64(buf, uint64(v))
		}
		buf = endian.BigEndian.AppendUint32(buf, uint32(len(b.id)))
		buf = append(buf, b.id...)
	}
	if n == 0 {
		return nil
	}
	buf = endian.BigEndian.AppendUint16(buf, 0xffff) // end of data
	if _, err := tx.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(buf), `COPY recycling.trades (manifest_no, trade_id,
		producer_uscc, producer_name, producer_county, collector_uscc, licence_no, waste_code, battery_sets, weight_g,
		amount_fen, occurred_at, recorded_at, batch_id) FROM STDIN (FORMAT binary)`); err != nil {
		return fmt.Errorf("copy trades: %w", err)
	}
	return nil
}

// pgEpoch is where Postgres counts timestamps from, in Unix microseconds.
var pgEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()

// pgMicros is t as a binary timestamptz: microseconds since 2000-01-01 UTC.
func pgMicros(t time.Time) int64 { return t.UnixMicro() - pgEpoch }

// onRecord adds to the two sets those of the rows' manifests and trade
// ids that are on record (one set-wise look-up).
func onRecord(ctx context.Context, tx pgx.Tx, rows []importRow, manifests, tradeIDs map[string]bool) error {
	ms, ts := make([]string, len(rows)), make([]string, len(rows))
	for i := range rows {
		ms[i], ts[i] = rows[i].trade.ManifestNo, rows[i].trade.TradeID
	}
	res, err := tx.Query(ctx, `SELECT k.m, k.t,
			EXISTS (SELECT 1 FROM recycling.trades t WHERE t.manifest_no = k.m),
			EXISTS (SELECT 1 FROM recycling.trades t WHERE t.trade_id = k.t)
		FROM unnest($1::text[], $2::text[]) AS k(m, t)`, ms, ts)
	if err != nil {
		return fmt.Errorf("find trades on record: %w", err)
	}
	defer res.Close()
	for res.Next() {
		var m, t string
		var hasM, hasT bool
		if err := res.Scan(&m, &t, &hasM, &hasT); err != nil {
			return fmt.Errorf("find trades on record: %w", err)
		}
		if hasM {
			manifests[m] = true
		}
		if hasT {
			tradeIDs[t] = true
		}
	}
	return res.Err()
}
