package main

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/qinqing/qinqing/shared/postgres"
	"github.com/qinqing/qinqing/shared/recycling"
)

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
		if err := rollBackChunk(ctx, tx); err != nil {
			return 0, 0, err
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
// refused rows for errors.csv and advances the batch to p, in one round
// trip (storeOutcome).
func (j *chunkJudge) finish(ctx context.Context, tx pgx.Tx, b *batch, rows []importRow, p progress) error {
	var o chunkOutcome
	for k, v := range j.totals {
		if d := v - j.base[k]; d != 0 {
			o.usccs, o.years, o.deltas = append(o.usccs, k.uscc), append(o.years, int32(k.year)), append(o.deltas, d)
		}
	}
	for i := range rows {
		if r := &rows[i]; r.reason != "" {
			o.nos = append(o.nos, r.no)
			o.tradeIDs, o.manifests = append(o.tradeIDs, clean(r.tradeID)), append(o.manifests, clean(r.manifestNo))
			o.reasons, o.fields, o.details = append(o.reasons, r.reason), append(o.fields, r.field), append(o.details, clean(r.detail))
		}
	}
	return storeOutcome(ctx, tx, b.id, &o, p)
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
