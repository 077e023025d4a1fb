package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/qinqing/qinqing/shared/docs"
	"github.com/qinqing/qinqing/shared/event"
	"github.com/qinqing/qinqing/shared/postgres"
	"github.com/qinqing/qinqing/shared/recycling"
	"github.com/qinqing/qinqing/shared/runtime"
)

// ImportConfig is the bulk import's part of the function's environment.
type ImportConfig struct {
	// ChunkRows is how many CSV rows a bulk import stores per
	// transaction: the unit of progress a retry resumes from.
	ChunkRows int `envconfig:"RECYCLING_IMPORT_CHUNK_ROWS" default:"10000"`
	// Prefix confines import keys: an import reads only objects whose key
	// starts with it.
	Prefix string `envconfig:"IMPORT_PREFIX" default:"imports/"`
}

// Check reports a configuration the function must not start with.
func (c ImportConfig) Check() error {
	if c.ChunkRows < 1 {
		return fmt.Errorf("RECYCLING_IMPORT_CHUNK_ROWS must be at least 1, got %d", c.ChunkRows)
	}
	if c.Prefix == "" || strings.HasPrefix(c.Prefix, "/") || !strings.HasSuffix(c.Prefix, "/") ||
		path.Clean(c.Prefix)+"/" != c.Prefix || hasDotSegment(c.Prefix) {
		return fmt.Errorf("IMPORT_PREFIX must be a relative folder ending in /, such as imports/, got %q", c.Prefix)
	}
	return nil
}

// confine refuses a key outside the import prefix: an absolute path, a
// . or .. segment, an unclean path, another folder.
func (c ImportConfig) confine(key string) error {
	switch {
	case !utf8.ValidString(key) || strings.ContainsFunc(key, func(r rune) bool { return r < 0x20 || r == 0x7f || r == '\\' }):
		return event.Invalid("key", "must be valid UTF-8 without control characters or backslashes")
	case len(key) > 1024:
		return event.Invalid("key", "is longer than 1024 bytes (the S3 limit)")
	case strings.HasPrefix(key, "/"):
		return event.Invalid("key", "must be relative to the bucket (under %s), not an absolute path", c.Prefix)
	case hasDotSegment(key):
		return event.Invalid("key", "must not contain . or .. segments")
	case path.Clean(key) != key:
		return event.Invalid("key", "must be a clean path: no empty segments, no trailing /")
	case !strings.HasPrefix(key, c.Prefix):
		return event.Invalid("key", "must name an object under %s: imports read only that folder", c.Prefix)
	}
	return nil
}

func hasDotSegment(p string) bool {
	for _, s := range strings.Split(p, "/") {
		if s == "." || s == ".." {
			return true
		}
	}
	return false
}

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

// importTrades is the stage of a bulk import (see docs/recycling.md, "Bulk
// import"): it runs before the event's transaction, stores the rows in
// chunks, each committed on the pool together with the batch's progress,
// writes errors.csv and completes the batch. The event's transaction then
// only stores the reply. A failure after some chunks committed answers
// 503 saying what is stored; the retry resumes after the last chunk.
func (f *Function) importTrades(ctx context.Context, m runtime.Meta, p *TradesImported) (runtime.Run, error) {
	if err := f.imp.confine(p.Key); err != nil {
		return nil, err
	}
	reply, err := f.runImport(ctx, m, p)
	if err != nil {
		return nil, err
	}
	return func(context.Context, pgx.Tx) (runtime.Result, error) {
		return runtime.Reply(TypeImportCompleted, json.RawMessage(reply)), nil
	}, nil
}

func (f *Function) runImport(ctx context.Context, m runtime.Meta, p *TradesImported) ([]byte, error) {
	b, err := loadBatch(ctx, f.pool, p.BatchID)
	if err != nil {
		return nil, stopped(p.BatchID, nil, err)
	}
	if b != nil && b.key != p.Key {
		return nil, event.Invalid("key", "batch %s is the file %q, not %q: a batch id names one file", p.BatchID, b.key, p.Key)
	}
	if b != nil && b.reply != nil {
		return b.reply, nil
	}
	known := b
	if known == nil { // nothing stored yet
		known = &batch{id: p.BatchID, rowsDone: 1}
	}
	body, err := f.openImport(ctx, p.Key, b)
	if err != nil {
		return nil, stopped(p.BatchID, known, err)
	}
	defer body.Close()
	rows := newCSVRows(body)
	if err := rows.header(); err != nil {
		return nil, stopped(p.BatchID, known, err)
	}
	if b == nil {
		if b, err = createBatch(ctx, f.pool, p.BatchID, p.Key, m.Time); err != nil {
			return nil, stopped(p.BatchID, known, err)
		}
		if b.key != p.Key { // another event created the batch meanwhile
			return nil, event.Invalid("key", "batch %s is the file %q, not %q: a batch id names one file", p.BatchID, b.key, p.Key)
		}
	}
	if err := f.importRows(ctx, b, rows); err != nil {
		return nil, stopped(p.BatchID, b, err)
	}
	reply, err := f.complete(ctx, b)
	if err != nil {
		return nil, stopped(p.BatchID, b, err)
	}
	return reply, nil
}

// openImport streams the import file. A missing object, or one the bucket
// refuses with a 4xx that is the key's fault, is a 400 naming key.
func (f *Function) openImport(ctx context.Context, key string, b *batch) (io.ReadCloser, error) {
	body, err := f.docs.Open(ctx, key)
	if err == nil {
		return body, nil
	}
	stored := ""
	if b != nil && b.rowsDone > 1 {
		stored = fmt.Sprintf(" (rows 2–%d of batch %s are stored from an earlier delivery)", b.rowsDone, b.id)
	}
	if errors.Is(err, docs.ErrNotFound) {
		return nil, event.Invalid("key", "no object %q in the bucket%s", key, stored)
	}
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) && keyFault(re.HTTPStatusCode()) {
		return nil, event.Invalid("key", "the bucket refuses to read %q (HTTP %d)%s", key, re.HTTPStatusCode(), stored)
	}
	return nil, err
}

// keyFault reports an S3 status that says the request for this key cannot
// succeed however often it is retried: a 4xx other than the credentials'
// (401, 403) and the transient ones (408, 429).
func keyFault(status int) bool {
	return status >= 400 && status < 500 && status != 401 && status != 403 && status != 408 && status != 429
}

// stopped turns a failure of the import into its answer: a 400 as it is,
// anything else a Resumable 503 saying what is stored.
func stopped(batchID string, b *batch, err error) error {
	var e *event.Error
	if errors.As(err, &e) && e.Code == event.EINVALID {
		return err
	}
	var detail string
	switch {
	case b == nil:
		detail = fmt.Sprintf("a transient fault stopped the import of batch %s before its progress was read; "+
			"rows stored by earlier deliveries stay stored, and a retry resumes after them", batchID)
	case b.rowsDone <= 1:
		detail = fmt.Sprintf("a transient fault stopped the import of batch %s: no row is stored yet; a retry starts at row 2", batchID)
	case b.allRead:
		detail = fmt.Sprintf("a transient fault stopped the import of batch %s after all rows were stored "+
			"(rows 2–%d: %d accepted, %d refused) but before errors.csv was written; a retry writes it and completes",
			batchID, b.rowsDone, b.accepted, b.rejected)
	default:
		detail = fmt.Sprintf("a transient fault stopped the import of batch %s: rows 2–%d of the file are stored "+
			"(%d accepted, %d refused); a retry resumes at row %d", batchID, b.rowsDone, b.accepted, b.rejected, b.rowsDone+1)
	}
	return &runtime.Resumable{Detail: detail, Err: err}
}

// batch is a bulk import's progress as last committed.
type batch struct {
	id       string
	key      string
	asOf     time.Time // the first delivery's event time: every row is judged as of it
	rowsDone int64     // last CSV row (header = 1) whose outcome is committed
	accepted int64
	rejected int64
	reply    []byte // set when complete
	allRead  bool   // every row is committed; what remains is errors.csv
}

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

// csvRows reads an import file chunk by chunk, never holding more than
// the chunk: the object is streamed from S3.
type csvRows struct {
	r   *csvReader
	row int64 // number of the last record read; the header is row 1
}

func newCSVRows(body io.Reader) *csvRows { return &csvRows{r: newCSVReader(body)} }

func (c *csvRows) header() error {
	buf, ends, err := c.r.readRecord(nil, nil)
	switch {
	case errors.Is(err, io.EOF):
		return event.Invalid("key", "the file is empty; want the header row %s", strings.Join(recycling.CSVHeader, ","))
	case err == csv.ErrBareQuote || err == csv.ErrQuote:
		return event.Invalid("key", "the header row is not CSV: %v", err)
	case err != nil:
		return fmt.Errorf("read import file: %w", err)
	}
	c.row = 1
	if err := recycling.CheckHeader(fields(nil, string(buf), 0, ends)); err != nil {
		return event.Invalid("key", "%v", err)
	}
	return nil
}

// fields appends to rec the fields of a record that starts at start in s
// and whose fields end at ends.
func fields(rec []string, s string, start int, ends []int) []string {
	for _, e := range ends {
		rec = append(rec, s[start:e])
		start = e
	}
	return rec
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
	// Verdict of the last judgement: "" accepted.
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
func (f *Function) importRows(ctx context.Context, b *batch, rows *csvRows) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	chunks := make(chan *chunk, 1)
	readErr := make(chan error, 1)
	go func() {
		defer close(chunks)
		readErr <- rows.chunks(ctx, b.rowsDone, b.asOf, f.imp.ChunkRows, chunks)
	}()
	for c := range chunks {
		if err := f.storeChunk(ctx, b, c); err != nil {
			cancel()
			for range chunks { // let the reader finish
			}
			return err
		}
	}
	if err := <-readErr; err != nil {
		return err
	}
	b.allRead = true
	return nil
}

// chunks sends the rows after done in chunks of size rows.
func (c *csvRows) chunks(ctx context.Context, done int64, asOf time.Time, size int, out chan<- *chunk) error {
	for {
		ch, err := c.chunk(done, asOf, size)
		if err != nil || ch == nil {
			return err
		}
		select {
		case out <- ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// chunk reads the next size rows after done (fewer at the end of the
// file, nil after it) and parses them. The records are read into one
// buffer that becomes one string: the rows' fields are slices of it, so
// a chunk costs a few allocations whatever its number of rows.
func (c *csvRows) chunk(done int64, asOf time.Time, size int) (*chunk, error) {
	type span struct {
		no       int64
		start    int // offset of the record in buf
		from, to int // its fields' ends in ends
		bad      error
	}
	buf := make([]byte, 0, size*160)
	ends := make([]int, 0, size*len(recycling.CSVHeader))
	spans := make([]span, 0, size)
	for len(spans) < size {
		start, from := len(buf), len(ends)
		var err error
		buf, ends, err = c.r.readRecord(buf, ends)
		if errors.Is(err, io.EOF) {
			break
		}
		var bad error
		switch {
		case err == csv.ErrBareQuote || err == csv.ErrQuote:
			bad, buf, ends = err, buf[:start], ends[:from]
		case err != nil:
			return nil, fmt.Errorf("read import file after row %d: %w", c.row, err)
		}
		c.row++
		if c.row <= done {
			buf, ends = buf[:start], ends[:from]
			continue
		}
		spans = append(spans, span{no: c.row, start: start, from: from, to: len(ends), bad: bad})
	}
	if len(spans) == 0 {
		return nil, nil
	}
	s := string(buf)
	ch := &chunk{rows: make([]importRow, len(spans)), last: spans[len(spans)-1].no}
	rec := make([]string, 0, 2*len(recycling.CSVHeader))
	for i, sp := range spans {
		r := &ch.rows[i]
		r.no = sp.no
		if sp.bad != nil {
			r.invalid, r.detail = true, "malformed CSV: "+sp.bad.Error()
			continue
		}
		rec = fields(rec[:0], s, sp.start, ends[sp.from:sp.to])
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
	return ch, nil
}

func field(rec []string, i int) string {
	if i < len(rec) {
		return rec[i]
	}
	return ""
}

// storeChunk stores one chunk in one transaction, retried when a
// concurrent writer got in the way (a deadlock with another import): the
// retry sees what that writer committed.
func (f *Function) storeChunk(ctx context.Context, b *batch, c *chunk) error {
	for attempt := 1; ; attempt++ {
		var p progress
		err := postgres.InTx(ctx, f.pool, func(tx pgx.Tx) (err error) {
			p, err = f.judgeAndStore(ctx, tx, b, c)
			return err
		})
		if err == nil {
			b.rowsDone, b.accepted, b.rejected = p.rowsDone, p.accepted, p.rejected
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

// progress is a batch's committed state, as a chunk transaction leaves it.
type progress struct {
	rowsDone, accepted, rejected int64
}

// judgeAndStore stores the chunk's rows after the batch's committed
// progress (a concurrent delivery of the same batch may have stored some
// or all of them: the batch row's lock orders the two). The rows are
// judged in file order with the rules of a single trade, against the
// database as committed plus the rows accepted before them; the accepted
// trades, the collectors' new totals, the refused rows and the batch's
// progress commit together.
func (f *Function) judgeAndStore(ctx context.Context, tx pgx.Tx, b *batch, c *chunk) (progress, error) {
	var p progress
	if err := tx.QueryRow(ctx, `SELECT rows_done, accepted, rejected FROM recycling.batches WHERE batch_id = $1 FOR UPDATE`, b.id).
		Scan(&p.rowsDone, &p.accepted, &p.rejected); err != nil {
		return p, fmt.Errorf("lock batch: %w", err)
	}
	if p.rowsDone >= c.last {
		return p, nil // stored by a concurrent delivery
	}
	rows := c.rows
	for len(rows) > 0 && rows[0].no <= p.rowsDone {
		rows = rows[1:]
	}
	if len(rows) == 0 || rows[0].no != p.rowsDone+1 {
		return p, fmt.Errorf("batch %s is at row %d, the chunk starts at row %d", b.id, p.rowsDone, c.rows[0].no)
	}
	j, err := f.newJudge(ctx, tx, rows)
	if err != nil {
		return p, err
	}
	accepted, rejected, err := j.store(ctx, tx, b)
	if err != nil {
		return p, err
	}
	p.accepted += accepted
	p.rejected += rejected
	p.rowsDone = c.last
	if err := j.finish(ctx, tx, b, rows, p); err != nil {
		return p, err
	}
	return p, nil
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

// complete writes errors.csv from the batch's refused rows and marks the
// batch complete with its reply, or returns the reply a concurrent
// delivery stored first.
func (f *Function) complete(ctx context.Context, b *batch) ([]byte, error) {
	errorsKey := path.Join("imports", b.id, "errors.csv")
	if err := f.writeErrors(ctx, b.id, errorsKey); err != nil {
		return nil, err
	}
	return postgres.InTxV(ctx, f.pool, func(tx pgx.Tx) ([]byte, error) {
		rep := ImportCompleted{BatchID: b.id, ErrorsKey: errorsKey}
		var stored *string
		if err := tx.QueryRow(ctx, `SELECT accepted, rejected, reply::text FROM recycling.batches WHERE batch_id = $1 FOR UPDATE`, b.id).
			Scan(&rep.Accepted, &rep.Rejected, &stored); err != nil {
			return nil, fmt.Errorf("complete batch: %w", err)
		}
		if stored != nil {
			return []byte(*stored), nil
		}
		data, err := json.Marshal(rep)
		if err != nil {
			return nil, err
		}
		if _, err := tx.Exec(ctx, `UPDATE recycling.batches SET completed_at = now(), errors_key = $2, reply = $3 WHERE batch_id = $1`,
			b.id, errorsKey, string(data)); err != nil {
			return nil, fmt.Errorf("complete batch: %w", err)
		}
		return data, nil
	})
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
	w := f.docs.NewWriter(ctx, errorsKey, "text/csv; charset=utf-8", partSize)
	cw := docs.NewCSVWriter(w) // no cell reads as a formula
	_ = cw.Write(errorsHeader)
	rec := make([]string, 6)
	for rows.Next() {
		var no int64
		if err := rows.Scan(&no, &rec[1], &rec[2], &rec[3], &rec[4], &rec[5]); err != nil {
			w.Abort()
			return fmt.Errorf("read import errors: %w", err)
		}
		rec[0] = strconv.FormatInt(no, 10)
		if err := cw.Write(rec); err != nil {
			w.Abort()
			return err
		}
	}
	if err := rows.Err(); err != nil {
		w.Abort()
		return fmt.Errorf("read import errors: %w", err)
	}
	if err := cw.Flush(); err != nil {
		w.Abort()
		return err
	}
	if err := w.Close(); err != nil {
		w.Abort()
		return err
	}
	return nil
}

// chunkJudge judges a chunk's rows in file order and stores them. It
// judges against the licences (share-locked), the collectors' year totals
// (locked for update) and the trades on record, which it does not look up
// beforehand: the insert of the accepted rows finds them (below).
type chunkJudge struct {
	loc      *time.Location
	rows     []importRow
	licences map[string]*recycling.Licence
	base     map[yearKey]int64 // totals as locked
	totals   map[yearKey]int64 // totals after the accepted rows
	// Keys of the chunk found on record; empty until an insert tells.
	onRecordManifests, onRecordTradeIDs map[string]bool
	accepted                            int64
}

func (f *Function) newJudge(ctx context.Context, tx pgx.Tx, rows []importRow) (*chunkJudge, error) {
	j := &chunkJudge{loc: f.loc, rows: rows, base: map[yearKey]int64{},
		onRecordManifests: map[string]bool{}, onRecordTradeIDs: map[string]bool{}}
	var licenceNos []string
	seen := map[string]bool{}
	for i := range rows {
		if r := &rows[i]; !r.invalid && !seen[r.trade.LicenceNo] {
			seen[r.trade.LicenceNo] = true
			licenceNos = append(licenceNos, r.trade.LicenceNo)
		}
	}
	var err error
	if j.licences, err = getLicences(ctx, tx, licenceNos); err != nil {
		return nil, err
	}
	// The year rows of collectors whose licence may accept the row.
	for i := range rows {
		r := &rows[i]
		if lic := j.licences[r.trade.LicenceNo]; !r.invalid && lic != nil && lic.CollectorUSCC == r.trade.CollectorUSCC {
			j.base[yearKey{r.trade.CollectorUSCC, r.trade.Year(f.loc)}] = 0
		}
	}
	if err := lockYears(ctx, tx, j.base); err != nil {
		return nil, err
	}
	j.judge()
	return j, nil
}

// judge sets each row's verdict, in file order, as a single trade event
// would get it at that point.
func (j *chunkJudge) judge() {
	j.totals = make(map[yearKey]int64, len(j.base))
	for k, v := range j.base {
		j.totals[k] = v
	}
	j.accepted = 0
	manifests := make(map[string]bool, len(j.rows))
	tradeIDs := make(map[string]bool, len(j.rows))
	for i := range j.rows {
		r := &j.rows[i]
		t := &r.trade
		if r.invalid {
			r.reason = ReasonInvalid
			continue
		}
		r.detail = ""
		if manifests[t.ManifestNo] || tradeIDs[t.TradeID] || j.onRecordManifests[t.ManifestNo] || j.onRecordTradeIDs[t.TradeID] {
			r.reason, r.detail = recycling.ReasonDuplicateManifest, "manifest or trade id already on record"
			continue
		}
		lic := j.licences[t.LicenceNo]
		r.reason = recycling.Judge(t, lic, j.loc)
		k := yearKey{t.CollectorUSCC, t.Year(j.loc)}
		switch r.reason {
		case recycling.ReasonUnknownLicence:
			r.detail = fmt.Sprintf("no licence %s held by collector %s", t.LicenceNo, t.CollectorUSCC)
		case recycling.ReasonLicenceNotValid:
			r.detail = fmt.Sprintf("licence valid %s to %s", lic.ValidFrom, lic.ValidTo)
		case recycling.ReasonImplausibleWeight:
			r.detail = fmt.Sprintf("%s kg for %d sets (1–100 kg per set)", recycling.FormatWeight(t.WeightGrams), t.BatterySets)
		case "":
			if j.totals[k]+t.WeightGrams > lic.CapacityGrams {
				r.reason = recycling.ReasonCapacityExceeded
				r.detail = fmt.Sprintf("%d total would be %s kg, capacity %s kg", k.year,
					recycling.FormatWeight(j.totals[k]+t.WeightGrams), recycling.FormatWeight(lic.CapacityGrams))
			}
		}
		if r.reason == "" {
			j.totals[k] += t.WeightGrams
			manifests[t.ManifestNo], tradeIDs[t.TradeID] = true, true
			j.accepted++
		}
	}
}

// store inserts the accepted rows into recycling.trades without looking
// their keys up first: a COPY (after a savepoint) that fails with a
// unique violation when one is on record. Then it rolls back to the
// savepoint, reads which of the chunk's keys are on record, judges the
// chunk again and copies again. Beforehand, the few rows refused for
// another reason are looked up, as duplicate_manifest comes first in the
// contract's order. It returns the chunk's accepted and refused counts.
func (j *chunkJudge) store(ctx context.Context, tx pgx.Tx, b *batch) (int64, int64, error) {
	var refused []importRow
	for i := range j.rows {
		if r := &j.rows[i]; !r.invalid && r.reason != "" && r.reason != recycling.ReasonDuplicateManifest {
			refused = append(refused, *r)
		}
	}
	if len(refused) > 0 {
		if err := onRecord(ctx, tx, refused, j.onRecordManifests, j.onRecordTradeIDs); err != nil {
			return 0, 0, err
		}
		j.judge()
	}
	for attempt := 1; ; attempt++ {
		err := copyTrades(ctx, tx, b, j.rows)
		if err == nil {
			return j.accepted, int64(len(j.rows)) - j.accepted, nil
		}
		if !postgres.IsUniqueViolation(err, "") {
			return 0, 0, err
		}
		if attempt == 10 {
			return 0, 0, fmt.Errorf("chunk ending at row %d: trades on record keep changing while it is judged: %w", j.rows[len(j.rows)-1].no, err)
		}
		if _, err := tx.Exec(ctx, `ROLLBACK TO SAVEPOINT chunk`); err != nil {
			return 0, 0, fmt.Errorf("roll back chunk: %w", err)
		}
		var valid []importRow
		for i := range j.rows {
			if !j.rows[i].invalid {
				valid = append(valid, j.rows[i])
			}
		}
		if err := onRecord(ctx, tx, valid, j.onRecordManifests, j.onRecordTradeIDs); err != nil {
			return 0, 0, err
		}
		j.judge()
	}
}

// finish adds the accepted weights to the locked year rows, records the
// refused rows for errors.csv and advances the batch to p, in one round trip.
func (j *chunkJudge) finish(ctx context.Context, tx pgx.Tx, b *batch, rows []importRow, p progress) error {
	q := &pgx.Batch{}
	var usccs []string
	var years []int32
	var deltas []int64
	for k, v := range j.totals {
		if d := v - j.base[k]; d != 0 {
			usccs, years, deltas = append(usccs, k.uscc), append(years, int32(k.year)), append(deltas, d)
		}
	}
	if len(usccs) > 0 {
		q.Queue(`UPDATE recycling.collector_years y SET total_g = y.total_g + d.delta
			FROM unnest($1::text[], $2::int[], $3::bigint[]) AS d(uscc, year, delta)
			WHERE y.collector_uscc = d.uscc AND y.year = d.year`, usccs, years, deltas)
	}
	var nos []int64
	var tradeIDs, manifests, reasons, fields, details []string
	for i := range rows {
		if r := &rows[i]; r.reason != "" {
			nos = append(nos, r.no)
			tradeIDs, manifests = append(tradeIDs, clean(r.tradeID)), append(manifests, clean(r.manifestNo))
			reasons, fields, details = append(reasons, r.reason), append(fields, r.field), append(details, clean(r.detail))
		}
	}
	if len(nos) > 0 {
		q.Queue(`INSERT INTO recycling.import_errors (batch_id, row_no, trade_id, manifest_no, reason, field, detail)
			SELECT $1, * FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[])`,
			b.id, nos, tradeIDs, manifests, reasons, fields, details)
	}
	q.Queue(`UPDATE recycling.batches SET rows_done = $2, accepted = $3, rejected = $4 WHERE batch_id = $1`,
		b.id, p.rowsDone, p.accepted, p.rejected)
	if err := tx.SendBatch(ctx, q).Close(); err != nil {
		return fmt.Errorf("store chunk outcome: %w", err)
	}
	return nil
}

// partSize is the part size of errors.csv's multipart upload (a variable
// so a test can use S3's smallest).
var partSize = docs.DefaultPartSize
