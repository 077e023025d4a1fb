package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/qinqing/qinqing/shared/docs"
	"github.com/qinqing/qinqing/shared/event"
	"github.com/qinqing/qinqing/shared/postgres"
	"github.com/qinqing/qinqing/shared/recycling"
	"github.com/qinqing/qinqing/shared/runtime"
)

// ImportCompleted is the data of import.completed.
type ImportCompleted struct {
	BatchID   string `json:"batchId"`
	Accepted  int64  `json:"accepted"`
	Rejected  int64  `json:"rejected"`
	ErrorsKey string `json:"errorsKey"`
}

// ReasonInvalid is the reason of a row that is malformed (what would be a
// 400 for a single trade event); field and detail say what is wrong.
const ReasonInvalid = "invalid"

// errorsHeader is the first row of imports/<batchId>/errors.csv.
var errorsHeader = []string{"row", "tradeId", "manifestNo", "reason", "field", "detail"}

// importTrades imports a CSV of trades from the bucket (see docs/recycling.md,
// "Bulk import"). The runtime's transaction (tx) holds the inbox row and a
// per-batch advisory lock; the rows are stored in chunks, each committed in
// its own transaction on the pool together with the batch's progress, so a
// crash leaves whole chunks and a retry resumes after the last one. The
// batch completes in tx: its reply is stored with the inbox row and answers
// every later run of the batch.
func (f *Function) importTrades(ctx context.Context, tx pgx.Tx, m runtime.Meta, p *TradesImported) (runtime.Result, error) {
	// Two runs of one batch at once (a rerun sent while the first is still
	// going) queue here; the second then finds the batch complete.
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, "recycling.batch/"+p.BatchID); err != nil {
		return runtime.Result{}, fmt.Errorf("lock batch: %w", err)
	}
	b, err := loadBatch(ctx, tx, p.BatchID)
	if err != nil {
		return runtime.Result{}, err
	}
	if b != nil && b.key != p.Key {
		return runtime.Result{}, event.Invalid("key", "batch %s is the file %q, not %q: a batch id names one file", p.BatchID, b.key, p.Key)
	}
	if b != nil && b.reply != nil {
		return runtime.Reply(TypeImportCompleted, json.RawMessage(b.reply)), nil
	}
	body, err := f.docs.Open(ctx, p.Key)
	if errors.Is(err, docs.ErrNotFound) {
		return runtime.Result{}, event.Invalid("key", "no object %q in the bucket", p.Key)
	}
	if err != nil {
		return runtime.Result{}, err
	}
	defer body.Close()
	rows := newCSVRows(body)
	if err := rows.header(); err != nil {
		return runtime.Result{}, err
	}
	if b == nil {
		b = &batch{id: p.BatchID, key: p.Key, asOf: m.Time, rowsDone: 1}
		if err := createBatch(ctx, f.pool, b); err != nil {
			return runtime.Result{}, err
		}
	}
	// The runtime's transaction waits while the chunks are stored; a
	// statement per chunk keeps it from counting as idle (a server's
	// idle_in_transaction_session_timeout would end it).
	keepAlive := func() error {
		_, err := tx.Exec(ctx, `SELECT 1`)
		return err
	}
	if err := f.importRows(ctx, b, rows, keepAlive); err != nil {
		return runtime.Result{}, err
	}
	errorsKey := path.Join("imports", p.BatchID, "errors.csv")
	if err := f.writeErrors(ctx, p.BatchID, errorsKey); err != nil {
		return runtime.Result{}, err
	}
	reply := ImportCompleted{BatchID: p.BatchID, ErrorsKey: errorsKey}
	if err := tx.QueryRow(ctx, `SELECT accepted, rejected FROM recycling.batches WHERE batch_id = $1`, p.BatchID).
		Scan(&reply.Accepted, &reply.Rejected); err != nil {
		return runtime.Result{}, fmt.Errorf("batch counts: %w", err)
	}
	data, err := json.Marshal(reply)
	if err != nil {
		return runtime.Result{}, err
	}
	if _, err := tx.Exec(ctx, `UPDATE recycling.batches SET completed_at = $2, errors_key = $3, reply = $4 WHERE batch_id = $1`,
		p.BatchID, m.Time, errorsKey, string(data)); err != nil {
		return runtime.Result{}, fmt.Errorf("complete batch: %w", err)
	}
	return runtime.Reply(TypeImportCompleted, json.RawMessage(data)), nil
}

// batch is a bulk import's progress.
type batch struct {
	id       string
	key      string
	asOf     time.Time // the first run's event time: every row is judged as of it
	rowsDone int64     // last CSV row (header = 1) whose outcome is committed
	reply    []byte    // set when complete
}

func loadBatch(ctx context.Context, tx pgx.Tx, id string) (*batch, error) {
	b := &batch{id: id}
	var reply *string
	err := tx.QueryRow(ctx, `SELECT key, as_of, rows_done, reply::text FROM recycling.batches WHERE batch_id = $1`, id).
		Scan(&b.key, &b.asOf, &b.rowsDone, &reply)
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

// createBatch records the batch outside the runtime's transaction, so the
// chunk transactions can advance it.
func createBatch(ctx context.Context, db postgres.Beginner, b *batch) error {
	return postgres.InTx(ctx, db, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO recycling.batches (batch_id, key, as_of, rows_done, started_at)
			VALUES ($1, $2, $3, 1, now()) ON CONFLICT DO NOTHING`, b.id, b.key, b.asOf)
		if err != nil {
			return fmt.Errorf("create batch: %w", err)
		}
		return nil
	})
}

// csvRows reads an import file record by record, never holding more than
// the current record: the object is streamed from S3.
type csvRows struct {
	r   *csv.Reader
	row int64 // number of the last record read; the header is row 1
}

func newCSVRows(body io.Reader) *csvRows {
	r := csv.NewReader(bufio.NewReaderSize(body, 256<<10))
	r.FieldsPerRecord = -1 // a row with the wrong number of fields is that row's error
	r.ReuseRecord = true
	return &csvRows{r: r}
}

func (c *csvRows) header() error {
	rec, err := c.r.Read()
	var pe *csv.ParseError
	switch {
	case errors.Is(err, io.EOF):
		return event.Invalid("key", "the file is empty; want the header row %s", strings.Join(recycling.CSVHeader, ","))
	case errors.As(err, &pe):
		return event.Invalid("key", "the header row is not CSV: %v", err)
	case err != nil:
		return fmt.Errorf("read import file: %w", err)
	}
	c.row = 1
	if err := recycling.CheckHeader(rec); err != nil {
		return event.Invalid("key", "%v", err)
	}
	return nil
}

// importRow is one data row and its verdict.
type importRow struct {
	no    int64
	trade recycling.Trade
	// Set when the row is malformed (reason invalid).
	invalid       bool
	field, detail string
	// Raw ids for errors.csv, whatever the row's state.
	tradeID, manifestNo string
	// Verdict of the last attempt to store the chunk: "" accepted.
	reason string
}

// chunk is a run of consecutive rows stored in one transaction.
type chunk struct {
	rows []importRow
	last int64 // number of the chunk's last row
}

// importRows reads the rows after b.rowsDone and stores them chunk by
// chunk. A reader goroutine parses the next chunk while the current one is
// being stored.
func (f *Function) importRows(ctx context.Context, b *batch, rows *csvRows, afterChunk func() error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	chunks := make(chan *chunk, 1)
	readErr := make(chan error, 1)
	go func() {
		defer close(chunks)
		readErr <- rows.chunks(ctx, b.rowsDone, b.asOf, f.chunkRows, chunks)
	}()
	for c := range chunks {
		err := f.storeChunk(ctx, b, c)
		if err == nil {
			err = afterChunk()
		}
		if err != nil {
			cancel()
			for range chunks { // let the reader finish
			}
			return err
		}
	}
	return <-readErr
}

// chunks sends the rows after done in chunks of size rows.
func (c *csvRows) chunks(ctx context.Context, done int64, asOf time.Time, size int, out chan<- *chunk) error {
	cur := &chunk{rows: make([]importRow, 0, size)}
	send := func() bool {
		select {
		case out <- cur:
			cur = &chunk{rows: make([]importRow, 0, size)}
			return true
		case <-ctx.Done():
			return false
		}
	}
	for {
		rec, err := c.r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		var pe *csv.ParseError
		if err != nil && !errors.As(err, &pe) {
			return fmt.Errorf("read import file: %w", err)
		}
		c.row++
		if c.row <= done {
			continue
		}
		r := importRow{no: c.row}
		if err != nil {
			r.invalid, r.detail = true, "malformed CSV: "+pe.Err.Error()
		} else {
			r.tradeID, r.manifestNo = field(rec, 0), field(rec, 1)
			t, err := recycling.ParseRow(rec, asOf)
			if err != nil {
				var e *event.Error
				if errors.As(err, &e) {
					r.invalid, r.field, r.detail = true, e.Field, e.Message
				} else {
					r.invalid, r.detail = true, err.Error()
				}
			}
			r.trade = t
		}
		cur.rows = append(cur.rows, r)
		cur.last = c.row
		if len(cur.rows) == size && !send() {
			return ctx.Err()
		}
	}
	if len(cur.rows) > 0 && !send() {
		return ctx.Err()
	}
	return nil
}

func field(rec []string, i int) string {
	if i < len(rec) {
		return rec[i]
	}
	return ""
}

// storeChunk stores one chunk in one transaction, retried when a
// concurrent writer got in the way (a manifest recorded meanwhile, a
// deadlock with another import): the retry sees what that writer committed.
func (f *Function) storeChunk(ctx context.Context, b *batch, c *chunk) error {
	for attempt := 1; ; attempt++ {
		err := postgres.InTx(ctx, f.pool, func(tx pgx.Tx) error { return f.judgeAndStore(ctx, tx, b, c) })
		if err == nil {
			b.rowsDone = c.last
			return nil
		}
		if !retryable(err) || attempt == 10 {
			return fmt.Errorf("import %s rows %d–%d: %w", b.id, b.rowsDone+1, c.last, err)
		}
	}
}

// retryable reports conflicts with concurrent writers.
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "23505" || pe.Code == "40P01" || pe.Code == "40001")
}

// yearKey names a collector's calendar year.
type yearKey struct {
	uscc string
	year int
}

// judgeAndStore judges the chunk's rows in file order with the rules of a
// single trade, against the database as committed plus the rows accepted
// before them in the chunk, then stores the accepted trades (COPY), the
// collectors' new totals, the refused rows and the batch's progress.
func (f *Function) judgeAndStore(ctx context.Context, tx pgx.Tx, b *batch, c *chunk) error {
	var manifests, tradeIDs, licenceNos []string
	seenLicence := map[string]bool{}
	keys := map[yearKey]int64{}
	for i := range c.rows {
		r := &c.rows[i]
		if r.invalid {
			continue
		}
		manifests = append(manifests, r.trade.ManifestNo)
		tradeIDs = append(tradeIDs, r.trade.TradeID)
		if !seenLicence[r.trade.LicenceNo] {
			seenLicence[r.trade.LicenceNo] = true
			licenceNos = append(licenceNos, r.trade.LicenceNo)
		}
	}
	takenManifests, takenTradeIDs, err := takenIDs(ctx, tx, manifests, tradeIDs)
	if err != nil {
		return err
	}
	licences, err := getLicences(ctx, tx, licenceNos)
	if err != nil {
		return err
	}
	// The year rows of collectors whose licence may accept the row.
	for i := range c.rows {
		r := &c.rows[i]
		if lic := licences[r.trade.LicenceNo]; !r.invalid && lic != nil && lic.CollectorUSCC == r.trade.CollectorUSCC {
			keys[yearKey{r.trade.CollectorUSCC, r.trade.Year(f.loc)}] = 0
		}
	}
	if err := lockYears(ctx, tx, keys); err != nil {
		return err
	}
	start := make(map[yearKey]int64, len(keys))
	for k, v := range keys {
		start[k] = v
	}
	var accepted, rejected int64
	var trades [][]any
	for i := range c.rows {
		r := &c.rows[i]
		t := &r.trade
		switch {
		case r.invalid:
			r.reason = ReasonInvalid
		case takenManifests[t.ManifestNo] || takenTradeIDs[t.TradeID]:
			r.reason, r.detail = recycling.ReasonDuplicateManifest, "manifest or trade id already on record"
		default:
			lic := licences[t.LicenceNo]
			r.reason = recycling.Judge(t, lic, f.loc)
			k := yearKey{t.CollectorUSCC, t.Year(f.loc)}
			switch r.reason {
			case recycling.ReasonUnknownLicence:
				r.detail = fmt.Sprintf("no licence %s held by collector %s", t.LicenceNo, t.CollectorUSCC)
			case recycling.ReasonLicenceNotValid:
				r.detail = fmt.Sprintf("licence valid %s to %s", lic.ValidFrom, lic.ValidTo)
			case recycling.ReasonImplausibleWeight:
				r.detail = fmt.Sprintf("%s kg for %d sets (1–100 kg per set)", recycling.FormatWeight(t.WeightGrams), t.BatterySets)
			case "":
				if keys[k]+t.WeightGrams > lic.CapacityGrams {
					r.reason = recycling.ReasonCapacityExceeded
					r.detail = fmt.Sprintf("%d total would be %s kg, capacity %s kg", k.year,
						recycling.FormatWeight(keys[k]+t.WeightGrams), recycling.FormatWeight(lic.CapacityGrams))
				}
			}
			if r.reason == "" {
				keys[k] += t.WeightGrams
				takenManifests[t.ManifestNo], takenTradeIDs[t.TradeID] = true, true
				trades = append(trades, []any{t.ManifestNo, t.TradeID, t.ProducerUSCC, t.ProducerName, t.ProducerCounty,
					t.CollectorUSCC, t.LicenceNo, t.WasteCode, t.BatterySets, t.WeightGrams, t.AmountFen, t.OccurredAt,
					b.asOf, b.id})
			}
		}
		if r.reason == "" {
			accepted++
		} else {
			rejected++
		}
	}
	if len(trades) > 0 {
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"recycling", "trades"}, []string{"manifest_no", "trade_id",
			"producer_uscc", "producer_name", "producer_county", "collector_uscc", "licence_no", "waste_code",
			"battery_sets", "weight_g", "amount_fen", "occurred_at", "recorded_at", "batch_id"},
			pgx.CopyFromRows(trades)); err != nil {
			return fmt.Errorf("copy trades: %w", err)
		}
	}
	if err := addToYears(ctx, tx, start, keys); err != nil {
		return err
	}
	if rejected > 0 {
		errs := make([][]any, 0, rejected)
		for _, r := range c.rows {
			if r.reason != "" {
				errs = append(errs, []any{b.id, r.no, clean(r.tradeID), clean(r.manifestNo), r.reason, r.field, clean(r.detail)})
			}
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"recycling", "import_errors"},
			[]string{"batch_id", "row_no", "trade_id", "manifest_no", "reason", "field", "detail"}, pgx.CopyFromRows(errs)); err != nil {
			return fmt.Errorf("copy import errors: %w", err)
		}
	}
	tag, err := tx.Exec(ctx, `UPDATE recycling.batches SET rows_done = $2, accepted = accepted + $3, rejected = rejected + $4
		WHERE batch_id = $1 AND rows_done = $5`, b.id, c.last, accepted, rejected, b.rowsDone)
	if err != nil {
		return fmt.Errorf("batch progress: %w", err)
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("batch %s: progress is not at row %d any more", b.id, b.rowsDone)
	}
	return nil
}

// takenIDs returns which of the manifests and trade ids are on record.
func takenIDs(ctx context.Context, tx pgx.Tx, manifests, tradeIDs []string) (map[string]bool, map[string]bool, error) {
	m, t := make(map[string]bool), make(map[string]bool)
	if len(manifests) == 0 {
		return m, t, nil
	}
	rows, err := tx.Query(ctx, `SELECT manifest_no, trade_id FROM recycling.trades
		WHERE manifest_no = ANY($1) OR trade_id = ANY($2)`, manifests, tradeIDs)
	if err != nil {
		return nil, nil, fmt.Errorf("find trades: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var mn, id string
		if err := rows.Scan(&mn, &id); err != nil {
			return nil, nil, fmt.Errorf("find trades: %w", err)
		}
		m[mn], t[id] = true, true
	}
	return m, t, rows.Err()
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

// addToYears adds what the chunk accepted to the locked year rows.
func addToYears(ctx context.Context, tx pgx.Tx, start, end map[yearKey]int64) error {
	var usccs []string
	var years []int32
	var deltas []int64
	for k, v := range end {
		if d := v - start[k]; d != 0 {
			usccs, years, deltas = append(usccs, k.uscc), append(years, int32(k.year)), append(deltas, d)
		}
	}
	if len(usccs) == 0 {
		return nil
	}
	_, err := tx.Exec(ctx, `UPDATE recycling.collector_years y SET total_g = y.total_g + d.delta
		FROM unnest($1::text[], $2::int[], $3::bigint[]) AS d(uscc, year, delta)
		WHERE y.collector_uscc = d.uscc AND y.year = d.year`, usccs, years, deltas)
	if err != nil {
		return fmt.Errorf("add to collector years: %w", err)
	}
	return nil
}

// clean makes a value from a file storable and printable: valid UTF-8,
// no NUL, at most 200 characters.
func clean(s string) string {
	s = strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", ""), "\uFFFD")
	if utf8.RuneCountInString(s) > 200 {
		s = string([]rune(s)[:200]) + "…"
	}
	return s
}

// writeErrors streams the batch's refused rows, in row order, to
// errorsKey (a header-only file when there are none).
func (f *Function) writeErrors(ctx context.Context, batchID, errorsKey string) error {
	rows, err := f.pool.Query(ctx, `SELECT row_no, trade_id, manifest_no, reason, field, detail
		FROM recycling.import_errors WHERE batch_id = $1 ORDER BY row_no`, batchID)
	if err != nil {
		return fmt.Errorf("read import errors: %w", err)
	}
	defer rows.Close()
	w := newObjectWriter(ctx, f.docs, errorsKey, "text/csv; charset=utf-8")
	cw := csv.NewWriter(w)
	_ = cw.Write(errorsHeader)
	rec := make([]string, 6)
	for rows.Next() {
		var no int64
		if err := rows.Scan(&no, &rec[1], &rec[2], &rec[3], &rec[4], &rec[5]); err != nil {
			w.Abort()
			return fmt.Errorf("read import errors: %w", err)
		}
		rec[0] = fmt.Sprint(no)
		if err := cw.Write(rec); err != nil {
			w.Abort()
			return err
		}
	}
	if err := rows.Err(); err != nil {
		w.Abort()
		return fmt.Errorf("read import errors: %w", err)
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		w.Abort()
		return err
	}
	if err := w.Close(); err != nil {
		w.Abort()
		return err
	}
	return nil
}
