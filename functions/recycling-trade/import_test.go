package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/qinqing/qinqing/shared/docs/s3test"
	"github.com/qinqing/qinqing/shared/recycling"
	"github.com/qinqing/qinqing/shared/runtime/functest"
)

func (f *fixture) put(t testing.TB, key string, body []byte) {
	t.Helper()
	if err := f.store.Put(context.Background(), key, "text/csv", body); err != nil {
		t.Fatal(err)
	}
}

func importData(batchID, key string) map[string]any {
	return map[string]any{"batchId": batchID, "key": key}
}

func readCSV(t *testing.T, body []byte) [][]string {
	t.Helper()
	recs, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatalf("errors.csv: %v\n%s", err, body)
	}
	return recs
}

// TestImport imports a file of good, malformed, refused and duplicate rows
// in chunks of 4 rows, so the rules are checked across chunk boundaries.
func TestImport(t *testing.T) {
	t.Parallel()
	f := setup(t, "RECYCLING_IMPORT_CHUNK_ROWS=4")
	f.licence(t, "L-A", collectorA, 1000)
	f.licence(t, "L-B", collectorB, 50)
	f.licenceFor(t, "L-OLD", collectorA, "2020-01-01", "2025-12-31", 1000)
	wantAccepted(t, f.trade(t, tradeData("T-OLD", "M-OLD", collectorA, "L-A", 1, "10.000", "2026-11-01T10:00:00+08:00")))

	at := "2026-11-20T10:00:00+08:00"
	long := row("I14", "M14", collectorA, "L-A", "1", "10.000", at)[:11]
	badUSCC := row("I13", "M13", collectorA, "L-A", "1", "10.000", at)
	badUSCC[2] = "91330500MA2B3C4D5C"
	quoted := row("I16", "M16", collectorA, "L-A", "2", "20.000", at)
	quoted[3] = "长兴,\"老王\"电瓶店"
	file := csvFile(t,
		recycling.CSVHeader,
		row("I2", "M2", collectorA, "L-A", "10", "150.250", at),   // 2 ok
		row("I3", "M3", collectorA, "L-A", "5", "75.005", at),     // 3 ok
		row("I4", "M4", collectorA, "L-A", "1", "1.2345", at),     // 4 invalid weightKg
		row("I5", "M-OLD", collectorA, "L-A", "1", "10.000", at),  // 5 duplicate of a recorded trade
		row("I6", "M2", collectorA, "L-A", "1", "10.000", at),     // 6 repeats row 2 (previous chunk)
		row("I7", "M7", collectorA, "L-404", "1", "10.000", at),   // 7 unknown licence
		row("I8", "M8", collectorA, "L-A", "1", "100.001", at),    // 8 implausible
		row("I9", "M9", collectorB, "L-B", "1", "40.000", at),     // 9 ok
		row("I10", "M10", collectorB, "L-B", "1", "10.001", at),   // 10 capacity (50 kg)
		row("I11", "M11", collectorB, "L-A", "1", "10.000", at),   // 11 licence of another collector
		row("I12", "M12", collectorA, "L-OLD", "1", "10.000", at), // 12 licence not valid
		badUSCC, // 13 invalid producerUscc
		long,    // 14 wrong number of fields
		row("I15", "M15", collectorA, "L-A", "1", "10.000", "2026-11-30T09:00:01+08:00"), // 15 after the event time
		quoted, // 16 ok, quoted name
		row("I17", "M16", collectorA, "L-A", "1", "10.000", at), // 17 repeats row 16 (same chunk)
		row("I2", "M18", collectorA, "L-A", "1", "10.000", at),  // 18 repeats trade id I2
		row("I19", "M19", collectorA, "L-A", "0", "10.000", at), // 19 invalid batterySets
	)
	f.put(t, "imports/2026-11/batch-1.csv", file)
	ev := functest.Event(TypeTradesImported, portalSrc, "import-1", week, importData("B1", "imports/2026-11/batch-1.csv"))
	r := f.fn.Send(t, ev)
	if r.Status != 200 || r.Type() != TypeImportCompleted {
		t.Fatalf("got %d %s %s", r.Status, r.Type(), r.Body)
	}
	var rep ImportCompleted
	r.DataInto(t, &rep)
	if rep != (ImportCompleted{BatchID: "B1", Accepted: 4, Rejected: 14, ErrorsKey: "imports/B1/errors.csv"}) {
		t.Fatalf("reply = %+v", rep)
	}
	body, err := f.store.Get(context.Background(), rep.ErrorsKey)
	if err != nil {
		t.Fatal(err)
	}
	recs := readCSV(t, body)
	want := [][2]string{
		{"4", "invalid"}, {"5", "duplicate_manifest"}, {"6", "duplicate_manifest"}, {"7", "unknown_licence"},
		{"8", "implausible_weight"}, {"10", "capacity_exceeded"}, {"11", "unknown_licence"}, {"12", "licence_not_valid"},
		{"13", "invalid"}, {"14", "invalid"}, {"15", "invalid"}, {"17", "duplicate_manifest"}, {"18", "duplicate_manifest"},
		{"19", "invalid"},
	}
	if len(recs) != len(want)+1 || strings.Join(recs[0], ",") != "row,tradeId,manifestNo,reason,field,detail" {
		t.Fatalf("errors.csv:\n%s", body)
	}
	fields := map[string]string{"4": "weightKg", "13": "producerUscc", "14": "", "15": "occurredAt", "19": "batterySets"}
	for i, w := range want {
		got := recs[i+1]
		if got[0] != w[0] || got[3] != w[1] {
			t.Fatalf("errors.csv row %d = %v, want row %s reason %s\n%s", i+1, got, w[0], w[1], body)
		}
		if fl, ok := fields[w[0]]; ok && got[4] != fl {
			t.Fatalf("errors.csv row %s field = %q, want %q", w[0], got[4], fl)
		}
	}
	if recs[1][1] != "I4" || recs[1][2] != "M4" {
		t.Fatalf("errors.csv names %v", recs[1])
	}
	var name string
	if err := f.pool.QueryRow(context.Background(), `SELECT producer_name FROM recycling.trades WHERE manifest_no = 'M16'`).Scan(&name); err != nil || name != "长兴,\"老王\"电瓶店" {
		t.Fatalf("quoted name stored as %q (%v)", name, err)
	}
	if n := f.count(t, `SELECT count(*) FROM recycling.trades WHERE batch_id = 'B1'`); n != 4 {
		t.Fatalf("%d trades of batch B1, want 4", n)
	}
	if g := f.yearTotal(t, collectorA, 2026); g != 10000+150250+75005+20000 {
		t.Fatalf("collector A total %d g", g)
	}
	if g := f.yearTotal(t, collectorB, 2026); g != 40000 {
		t.Fatalf("collector B total %d g", g)
	}

	t.Run("Redelivery", func(t *testing.T) {
		again := f.fn.SendStructured(t, ev)
		if again.Status != 200 || !bytes.Equal(again.Event.Data(), r.Event.Data()) || again.Event.ID() != r.Event.ID() {
			t.Fatalf("redelivery: %d %s", again.Status, again.Body)
		}
	})
	t.Run("RerunChangesNothing", func(t *testing.T) {
		// The same batch announced again by a new event, after more trades
		// arrived: nothing changes and the reply is the same.
		wantAccepted(t, f.trade(t, tradeData("T-NEW", "M-NEW", collectorA, "L-A", 1, "10.000", at)))
		rerun := f.send(t, TypeTradesImported, week.Add(time.Hour), importData("B1", "imports/2026-11/batch-1.csv"))
		if rerun.Status != 200 || rerun.Type() != TypeImportCompleted || !bytes.Equal(rerun.Event.Data(), r.Event.Data()) {
			t.Fatalf("rerun: %d %s, want %s", rerun.Status, rerun.Body, r.Event.Data())
		}
		if n := f.count(t, `SELECT count(*) FROM recycling.trades`); n != 6 {
			t.Fatalf("%d trades after rerun, want 6", n)
		}
		if again, _ := f.store.Get(context.Background(), rep.ErrorsKey); !bytes.Equal(again, body) {
			t.Fatalf("errors.csv changed:\n%s", again)
		}
	})
	t.Run("ErrSameBatchOtherFile", func(t *testing.T) {
		f.put(t, "imports/other.csv", csvFile(t, recycling.CSVHeader))
		r := f.send(t, TypeTradesImported, week, importData("B1", "imports/other.csv"))
		if r.Status != 400 || r.Problem()["field"] != "key" {
			t.Fatalf("got %d %s", r.Status, r.Body)
		}
	})
	t.Run("HeaderOnly", func(t *testing.T) {
		f.put(t, "imports/empty.csv", []byte("\ufeff"+strings.Join(recycling.CSVHeader, ",")+"\r\n"))
		r := f.send(t, TypeTradesImported, week, importData("B-EMPTY", "imports/empty.csv"))
		var rep ImportCompleted
		r.DataInto(t, &rep)
		if rep != (ImportCompleted{BatchID: "B-EMPTY", ErrorsKey: "imports/B-EMPTY/errors.csv"}) {
			t.Fatalf("reply = %+v", rep)
		}
		if body, err := f.store.Get(context.Background(), rep.ErrorsKey); err != nil || string(body) != "row,tradeId,manifestNo,reason,field,detail\n" {
			t.Fatalf("errors.csv = %q, %v", body, err)
		}
	})
}

func TestImportRefused(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.put(t, "imports/bad-header.csv", csvFile(t, []string{"tradeId", "manifestNo"}, []string{"T1", "M1"}))
	f.put(t, "imports/empty.csv", nil)
	cases := []struct {
		name  string
		data  map[string]any
		field string
	}{
		{"MissingKey", importData("B1", "imports/nothing-here.csv"), "key"},
		{"BadHeader", importData("B2", "imports/bad-header.csv"), "key"},
		{"EmptyFile", importData("B3", "imports/empty.csv"), "key"},
		{"NoBatchID", importData("", "imports/empty.csv"), "batchId"},
		{"BatchIDSlash", importData("a/b", "imports/empty.csv"), "batchId"},
		{"NoKey", importData("B4", ""), "key"},
	}
	for _, tc := range cases {
		t.Run("Err"+tc.name, func(t *testing.T) {
			r := f.send(t, TypeTradesImported, week, tc.data)
			if r.Status != 400 || r.Problem()["field"] != tc.field {
				t.Fatalf("got %d %s, want 400 naming %s", r.Status, r.Body, tc.field)
			}
		})
	}
	if n := f.count(t, `SELECT count(*) FROM recycling.batches`); n != 0 {
		t.Fatalf("%d batches recorded by refused imports", n)
	}
	if n := f.count(t, `SELECT count(*) FROM qinqing.inbox`); n != 0 {
		t.Fatalf("%d inbox rows written by refused imports", n)
	}
}

// TestImportResume kills the function in the middle of an import, after
// some chunks are committed and while the next one waits, and sends the
// event again to a new instance: the import resumes where it stopped and
// ends as a clean import would.
func TestImportResume(t *testing.T) {
	t.Parallel()
	f := setup(t, "RECYCLING_IMPORT_CHUNK_ROWS=5")
	f.licence(t, "L-A", collectorA, 100000)
	f.licence(t, "L-B", collectorB, 100000)
	recs := [][]string{recycling.CSVHeader}
	at := "2026-11-20T10:00:00+08:00"
	for i := 0; i < 20; i++ {
		recs = append(recs, row(fmt.Sprintf("A%d", i), fmt.Sprintf("MA%d", i), collectorA, "L-A", "2", "30.500", at))
	}
	for i := 0; i < 20; i++ {
		recs = append(recs, row(fmt.Sprintf("B%d", i), fmt.Sprintf("MB%d", i), collectorB, "L-B", "2", "30.500", at))
	}
	recs = append(recs, row("A0", "MA0-again", collectorA, "L-A", "2", "30.500", at)) // a repeated trade id
	f.put(t, "imports/big.csv", csvFile(t, recs...))

	// Hold collector B's year row so the chunk with the first B rows waits.
	ctx := context.Background()
	if _, err := f.pool.Exec(ctx, `INSERT INTO recycling.collector_years (collector_uscc, year) VALUES ($1, 2026)`, collectorB); err != nil {
		t.Fatal(err)
	}
	hold, err := f.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Rollback(ctx)
	if _, err := hold.Exec(ctx, `SELECT 1 FROM recycling.collector_years WHERE collector_uscc = $1 FOR UPDATE`, collectorB); err != nil {
		t.Fatal(err)
	}
	ev := functest.Event(TypeTradesImported, portalSrc, "import-big", week, importData("B-BIG", "imports/big.csv"))
	go func() {
		// Not functest.Send: the request fails when the process is killed.
		req, _ := http.NewRequest(http.MethodPost, f.fn.URL+"/", nil)
		if err := cehttp.WriteRequest(context.Background(), binding.ToMessage(&ev), req); err == nil {
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}
	}()
	deadline := time.Now().Add(20 * time.Second)
	for f.count(t, `SELECT coalesce((SELECT rows_done FROM recycling.batches WHERE batch_id = 'B-BIG'), 0)`) != 21 {
		if time.Now().After(deadline) {
			t.Fatal("the import did not get to row 21")
		}
		time.Sleep(20 * time.Millisecond)
	}
	f.fn.Kill()
	if n := f.count(t, `SELECT count(*) FROM recycling.trades`); n != 20 {
		t.Fatalf("%d trades after the crash, want the 20 of the committed chunks", n)
	}
	if err := hold.Rollback(ctx); err != nil {
		t.Fatal(err)
	}

	fn := functest.Start(t, binary, f.env...)
	r := fn.Send(t, ev)
	var rep ImportCompleted
	r.DataInto(t, &rep)
	if rep.Accepted != 40 || rep.Rejected != 1 {
		t.Fatalf("reply after resuming = %+v", rep)
	}
	if n := f.count(t, `SELECT count(*) FROM recycling.trades`); n != 40 {
		t.Fatalf("%d trades, want 40", n)
	}
	for _, c := range []string{collectorA, collectorB} {
		if g := f.yearTotal(t, c, 2026); g != 20*30500 {
			t.Fatalf("collector %s total %d g, want %d", c, g, 20*30500)
		}
	}
	body, err := f.store.Get(ctx, rep.ErrorsKey)
	if err != nil {
		t.Fatal(err)
	}
	if recs := readCSV(t, body); len(recs) != 2 || recs[1][0] != "42" || recs[1][3] != "duplicate_manifest" {
		t.Fatalf("errors.csv:\n%s", body)
	}
}

// TestImportStreams imports a few thousand generated rows in chunks of
// 500 and checks the sums.
func TestImportStreams(t *testing.T) {
	t.Parallel()
	f := setup(t, "RECYCLING_IMPORT_CHUNK_ROWS=500")
	g := newGenerator()
	for _, l := range g.licences {
		f.licence(t, l.no, l.uscc, 1000000000)
	}
	var buf bytes.Buffer
	sum, err := g.write(&buf, 3000, "S")
	if err != nil {
		t.Fatal(err)
	}
	f.put(t, "imports/gen.csv", buf.Bytes())
	r := f.send(t, TypeTradesImported, week, importData("GEN", "imports/gen.csv"))
	var rep ImportCompleted
	r.DataInto(t, &rep)
	if rep.Accepted != sum.accepted || rep.Rejected != sum.rejected {
		t.Fatalf("reply = %+v, want %d accepted %d rejected", rep, sum.accepted, sum.rejected)
	}
	if n := f.count(t, `SELECT coalesce(sum(weight_g), 0) FROM recycling.trades`); n != sum.grams {
		t.Fatalf("stored %d g, want %d", n, sum.grams)
	}
	if n := f.count(t, `SELECT coalesce(sum(total_g), 0) FROM recycling.collector_years`); n != sum.grams {
		t.Fatalf("year totals %d g, want %d", n, sum.grams)
	}
}

// TestObjectWriter streams an object larger than a part through a
// multipart upload, and a small one through a single PUT.
func TestObjectWriter(t *testing.T) {
	_, store := s3test.New(t)
	ctx := context.Background()
	partSize = 5 << 20
	for _, size := range []int{100, 12<<20 + 7} {
		data := bytes.Repeat([]byte("0123456789abcdef"), size/16+1)[:size]
		key := fmt.Sprintf("w/%d", size)
		w := newObjectWriter(ctx, store, key, "text/csv")
		for off := 0; off < len(data); off += 4096 {
			end := min(off+4096, len(data))
			if _, err := w.Write(data[off:end]); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		got, err := store.Get(ctx, key)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("size %d: got %d bytes, %v", size, len(got), err)
		}
	}
}
