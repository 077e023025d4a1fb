package main

import (
	"bytes"
	"context"
	endian "encoding/binary"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The bulk import's statements: its batches' progress (recycling.batches),
// the refused rows (recycling.import_errors) and the SQL of a chunk.

// loadBatch returns the batch's committed progress, nil when none is
// stored.
func loadBatch(ctx context.Context, db *pgxpool.Pool, id string) (*batch, error) {
	b := &batch{id: id}
	var reply *string
	err := db.QueryRow(ctx, `SELECT key, as_of, rows_done, accepted, rejected, reply::text FROM recycling.batches WHERE batch_id = $1`, id).
		Scan(&b.key, &b.asOf, &b.rowsDone, &b.accepted, &b.rejected, &reply)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load batch: %w", err)
	}
	if reply != nil {
		b.reply = []byte(*reply)
	}
	return b, nil
}

// createBatch records the batch (its key and as-of time), or loads the one
// a concurrent delivery recorded first.
func createBatch(ctx context.Context, db *pgxpool.Pool, id, key string, asOf time.Time) (*batch, error) {
	if _, err := db.Exec(ctx, `INSERT INTO recycling.batches (batch_id, key, as_of, rows_done, started_at)
		VALUES ($1, $2, $3, 1, now()) ON CONFLICT DO NOTHING`, id, key, asOf); err != nil {
		return nil, fmt.Errorf("create batch: %w", err)
	}
	b, err := loadBatch(ctx, db, id)
	if err == nil && b == nil {
		err = fmt.Errorf("batch %s vanished after it was created", id)
	}
	return b, err
}

// lockProgress locks the batch's row until the chunk's transaction ends
// and returns its committed progress.
func lockProgress(ctx context.Context, tx pgx.Tx, id string) (progress, error) {
	var p progress
	if err := tx.QueryRow(ctx, `SELECT rows_done, accepted, rejected FROM recycling.batches WHERE batch_id = $1 FOR UPDATE`, id).
		Scan(&p.rowsDone, &p.accepted, &p.rejected); err != nil {
		return p, fmt.Errorf("lock batch: %w", err)
	}
	return p, nil
}

// lockBatchResult locks the batch's row and returns its counts and the
// reply stored when it was completed (nil before).
func lockBatchResult(ctx context.Context, tx pgx.Tx, id string) (accepted, rejected int64, reply []byte, err error) {
	var stored *string
	if err := tx.QueryRow(ctx, `SELECT accepted, rejected, reply::text FROM recycling.batches WHERE batch_id = $1 FOR UPDATE`, id).
		Scan(&accepted, &rejected, &stored); err != nil {
		return 0, 0, nil, fmt.Errorf("complete batch: %w", err)
	}
	if stored != nil {
		reply = []byte(*stored)
	}
	return accepted, rejected, reply, nil
}

// completeBatch marks the batch complete with its errors.csv and reply.
func completeBatch(ctx context.Context, tx pgx.Tx, id, errorsKey string, reply []byte) error {
	if _, err := tx.Exec(ctx, `UPDATE recycling.batches SET completed_at = now(), errors_key = $2, reply = $3 WHERE batch_id = $1`,
		id, errorsKey, string(reply)); err != nil {
		return fmt.Errorf("complete batch: %w", err)
	}
	return nil
}

// eachImportError calls fn with each refused row of the batch, in row
// order, as a record of errors.csv (errorsHeader's columns). The record
// is reused for the next row.
func eachImportError(ctx context.Context, db *pgxpool.Pool, batchID string, fn func(rec []string) error) error {
	rows, err := db.Query(ctx, `SELECT row_no, trade_id, manifest_no, reason, field, detail
		FROM recycling.import_errors WHERE batch_id = $1 ORDER BY row_no`, batchID)
	if err != nil {
		return fmt.Errorf("read import errors: %w", err)
	}
	defer rows.Close()
	rec := make([]string, 6)
	for rows.Next() {
		var no int64
		if err := rows.Scan(&no, &rec[1], &rec[2], &rec[3], &rec[4], &rec[5]); err != nil {
			return fmt.Errorf("read import errors: %w", err)
		}
		rec[0] = strconv.FormatInt(no, 10)
		if err := fn(rec); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read import errors: %w", err)
	}
	return nil
}

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

// rollBackChunk undoes a failed copyTrades (back to its savepoint).
func rollBackChunk(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, `ROLLBACK TO SAVEPOINT chunk`); err != nil {
		return fmt.Errorf("roll back chunk: %w", err)
	}
	return nil
}

// chunkOutcome is what a chunk stores besides its trades: the weight
// added to each collector's year (usccs, years, deltas) and the refused
// rows (nos and the columns of recycling.import_errors).
type chunkOutcome struct {
	usccs                                         []string
	years                                         []int32
	deltas                                        []int64
	nos                                           []int64
	tradeIDs, manifests, reasons, fields, details []string
}

// storeOutcome adds o's weights to the locked year rows, records o's
// refused rows and advances the batch to p, in one round trip.
func storeOutcome(ctx context.Context, tx pgx.Tx, batchID string, o *chunkOutcome, p progress) error {
	q := &pgx.Batch{}
	if len(o.usccs) > 0 {
		q.Queue(`UPDATE recycling.collector_years y SET total_g = y.total_g + d.delta
			FROM unnest($1::text[], $2::int[], $3::bigint[]) AS d(uscc, year, delta)
			WHERE y.collector_uscc = d.uscc AND y.year = d.year`, o.usccs, o.years, o.deltas)
	}
	if len(o.nos) > 0 {
		q.Queue(`INSERT INTO recycling.import_errors (batch_id, row_no, trade_id, manifest_no, reason, field, detail)
			SELECT $1, * FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[])`,
			batchID, o.nos, o.tradeIDs, o.manifests, o.reasons, o.fields, o.details)
	}
	q.Queue(`UPDATE recycling.batches SET rows_done = $2, accepted = $3, rejected = $4 WHERE batch_id = $1`,
		batchID, p.rowsDone, p.accepted, p.rejected)
	if err := tx.SendBatch(ctx, q).Close(); err != nil {
		return fmt.Errorf("store chunk outcome: %w", err)
	}
	return nil
}
