package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/qinqing/qinqing/shared/contract"
	"github.com/qinqing/qinqing/shared/docs"
	"github.com/qinqing/qinqing/shared/event"
	"github.com/qinqing/qinqing/shared/postgres"
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
func (f *Function) importTrades(ctx context.Context, m runtime.Meta, p *contract.TradesImported) (runtime.Run, error) {
	if err := f.imp.confine(p.Key); err != nil {
		return nil, err
	}
	reply, err := f.runImport(ctx, m, p)
	if err != nil {
		return nil, err
	}
	return func(context.Context, pgx.Tx) (runtime.Result, error) {
		return runtime.Reply(contract.TypeImportCompleted, json.RawMessage(reply)), nil
	}, nil
}

func (f *Function) runImport(ctx context.Context, m runtime.Meta, p *contract.TradesImported) ([]byte, error) {
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
	p, err := lockProgress(ctx, tx, b.id)
	if err != nil {
		return p, err
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

// complete writes errors.csv from the batch's refused rows and marks the
// batch complete with its reply, or returns the reply a concurrent
// delivery stored first.
func (f *Function) complete(ctx context.Context, b *batch) ([]byte, error) {
	errorsKey := path.Join("imports", b.id, "errors.csv")
	if err := f.writeErrors(ctx, b.id, errorsKey); err != nil {
		return nil, err
	}
	return postgres.InTxV(ctx, f.pool, func(tx pgx.Tx) ([]byte, error) {
		rep := contract.ImportCompleted{BatchID: b.id, ErrorsKey: errorsKey}
		var stored []byte
		var err error
		if rep.Accepted, rep.Rejected, stored, err = lockBatchResult(ctx, tx, b.id); err != nil || stored != nil {
			return stored, err
		}
		data, err := json.Marshal(rep)
		if err != nil {
			return nil, err
		}
		if err := completeBatch(ctx, tx, b.id, errorsKey, data); err != nil {
			return nil, err
		}
		return data, nil
	})
}

// writeErrors streams the batch's refused rows, in row order, to
// errorsKey (a header-only file when there are none).
func (f *Function) writeErrors(ctx context.Context, batchID, errorsKey string) error {
	w := f.docs.NewWriter(ctx, errorsKey, "text/csv; charset=utf-8", partSize)
	cw := docs.NewCSVWriter(w) // no cell reads as a formula
	_ = cw.Write(errorsHeader)
	err := eachImportError(ctx, f.pool, batchID, cw.Write)
	if err == nil {
		err = cw.Flush()
	}
	if err == nil {
		err = w.Close()
	}
	if err != nil {
		w.Abort()
		return err
	}
	return nil
}

// partSize is the part size of errors.csv's multipart upload (a variable
// so a test can use S3's smallest).
var partSize = docs.DefaultPartSize
