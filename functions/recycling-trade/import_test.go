package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/qinqing/qinqing/shared/contract"
	"github.com/qinqing/qinqing/shared/docs/s3test"
	"github.com/qinqing/qinqing/shared/postgres"
	"github.com/qinqing/qinqing/shared/postgres/pgtest"
	"github.com/qinqing/qinqing/shared/recycling"
	"github.com/qinqing/qinqing/shared/runtime/functest"
)

func (f *fixture) put(t testing.TB, key string, body []byte) {
	t.Helper()
	if err := f.Store.Put(context.Background(), key, "text/csv", body); err != nil {
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
	ev := functest.Event(contract.TypeTradesImported, portalSrc, "import-1", week, importData("B1", "imports/2026-11/batch-1.csv"))
	r := f.Fn.Send(t, ev)
	if r.Status != 200 || r.Type() != contract.TypeImportCompleted {
		t.Fatalf("got %d %s %s", r.Status, r.Type(), r.Body)
	}
	var rep contract.ImportCompleted
	r.DataInto(t, &rep)
	if rep != (contract.ImportCompleted{BatchID: "B1", Accepted: 4, Rejected: 14, ErrorsKey: "imports/B1/errors.csv"}) {
		t.Fatalf("reply = %+v", rep)
	}
	body, err := f.Store.Get(context.Background(), rep.ErrorsKey)
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
	if err := f.Pool.QueryRow(context.Background(), `SELECT producer_name FROM recycling.trades WHERE manifest_no = 'M16'`).Scan(&name); err != nil || name != "长兴,\"老王\"电瓶店" {
		t.Fatalf("quoted name stored as %q (%v)", name, err)
	}
	if n := f.Count(t, `SELECT count(*) FROM recycling.trades WHERE batch_id = 'B1'`); n != 4 {
		t.Fatalf("%d trades of batch B1, want 4", n)
	}
	if g := f.yearTotal(t, collectorA, 2026); g != 10000+150250+75005+20000 {
		t.Fatalf("collector A total %d g", g)
	}
	if g := f.yearTotal(t, collectorB, 2026); g != 40000 {
		t.Fatalf("collector B total %d g", g)
	}

	t.Run("Redelivery", func(t *testing.T) {
		again := f.Fn.SendStructured(t, ev)
		if again.Status != 200 || !bytes.Equal(again.Event.Data(), r.Event.Data()) || again.Event.ID() != r.Event.ID() {
			t.Fatalf("redelivery: %d %s", again.Status, again.Body)
		}
	})
	t.Run("RerunChangesNothing", func(t *testing.T) {
		// The same batch announced again by a new event, after more trades
		// arrived: nothing changes and the reply is the same.
		wantAccepted(t, f.trade(t, tradeData("T-NEW", "M-NEW", collectorA, "L-A", 1, "10.000", at)))
		rerun := f.send(t, contract.TypeTradesImported, week.Add(time.Hour), importData("B1", "imports/2026-11/batch-1.csv"))
		if rerun.Status != 200 || rerun.Type() != contract.TypeImportCompleted || !bytes.Equal(rerun.Event.Data(), r.Event.Data()) {
			t.Fatalf("rerun: %d %s, want %s", rerun.Status, rerun.Body, r.Event.Data())
		}
		if n := f.Count(t, `SELECT count(*) FROM recycling.trades`); n != 6 {
			t.Fatalf("%d trades after rerun, want 6", n)
		}
		if again, _ := f.Store.Get(context.Background(), rep.ErrorsKey); !bytes.Equal(again, body) {
			t.Fatalf("errors.csv changed:\n%s", again)
		}
	})
	t.Run("ErrSameBatchOtherFile", func(t *testing.T) {
		f.put(t, "imports/other.csv", csvFile(t, recycling.CSVHeader))
		r := f.send(t, contract.TypeTradesImported, week, importData("B1", "imports/other.csv"))
		if r.Status != 400 || r.Problem()["field"] != "key" {
			t.Fatalf("got %d %s", r.Status, r.Body)
		}
	})
	t.Run("HeaderOnly", func(t *testing.T) {
		f.put(t, "imports/empty.csv", []byte("\ufeff"+strings.Join(recycling.CSVHeader, ",")+"\r\n"))
		r := f.send(t, contract.TypeTradesImported, week, importData("B-EMPTY", "imports/empty.csv"))
		var rep contract.ImportCompleted
		r.DataInto(t, &rep)
		if rep != (contract.ImportCompleted{BatchID: "B-EMPTY", ErrorsKey: "imports/B-EMPTY/errors.csv"}) {
			t.Fatalf("reply = %+v", rep)
		}
		if body, err := f.Store.Get(context.Background(), rep.ErrorsKey); err != nil || string(body) != "row,tradeId,manifestNo,reason,field,detail\n" {
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
			r := f.send(t, contract.TypeTradesImported, week, tc.data)
			if r.Status != 400 || r.Problem()["field"] != tc.field {
				t.Fatalf("got %d %s, want 400 naming %s", r.Status, r.Body, tc.field)
			}
		})
	}
	if n := f.Count(t, `SELECT count(*) FROM recycling.batches`); n != 0 {
		t.Fatalf("%d batches recorded by refused imports", n)
	}
	if n := f.Count(t, `SELECT count(*) FROM qinqing.inbox`); n != 0 {
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
	if _, err := f.Pool.Exec(ctx, `INSERT INTO recycling.collector_years (collector_uscc, year) VALUES ($1, 2026)`, collectorB); err != nil {
		t.Fatal(err)
	}
	hold, err := f.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Rollback(ctx)
	if _, err := hold.Exec(ctx, `SELECT 1 FROM recycling.collector_years WHERE collector_uscc = $1 FOR UPDATE`, collectorB); err != nil {
		t.Fatal(err)
	}
	ev := functest.Event(contract.TypeTradesImported, portalSrc, "import-big", week, importData("B-BIG", "imports/big.csv"))
	go func() {
		// Not functest.Send: the request fails when the process is killed.
		req, _ := http.NewRequest(http.MethodPost, f.Fn.URL+"/", nil)
		if err := cehttp.WriteRequest(context.Background(), binding.ToMessage(&ev), req); err == nil {
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}
	}()
	deadline := time.Now().Add(20 * time.Second)
	for f.Count(t, `SELECT coalesce((SELECT rows_done FROM recycling.batches WHERE batch_id = 'B-BIG'), 0)`) != 21 {
		if time.Now().After(deadline) {
			t.Fatal("the import did not get to row 21")
		}
		time.Sleep(20 * time.Millisecond)
	}
	f.Fn.Kill()
	if n := f.Count(t, `SELECT count(*) FROM recycling.trades`); n != 20 {
		t.Fatalf("%d trades after the crash, want the 20 of the committed chunks", n)
	}
	if err := hold.Rollback(ctx); err != nil {
		t.Fatal(err)
	}

	fn := functest.Start(t, binary, f.Env...)
	r := fn.Send(t, ev)
	var rep contract.ImportCompleted
	r.DataInto(t, &rep)
	if rep.Accepted != 40 || rep.Rejected != 1 {
		t.Fatalf("reply after resuming = %+v", rep)
	}
	if n := f.Count(t, `SELECT count(*) FROM recycling.trades`); n != 40 {
		t.Fatalf("%d trades, want 40", n)
	}
	for _, c := range []string{collectorA, collectorB} {
		if g := f.yearTotal(t, c, 2026); g != 20*30500 {
			t.Fatalf("collector %s total %d g, want %d", c, g, 20*30500)
		}
	}
	body, err := f.Store.Get(ctx, rep.ErrorsKey)
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
	r := f.send(t, contract.TypeTradesImported, week, importData("GEN", "imports/gen.csv"))
	var rep contract.ImportCompleted
	r.DataInto(t, &rep)
	if rep.Accepted != sum.accepted || rep.Rejected != sum.rejected {
		t.Fatalf("reply = %+v, want %d accepted %d rejected", rep, sum.accepted, sum.rejected)
	}
	if n := f.Count(t, `SELECT coalesce(sum(weight_g), 0) FROM recycling.trades`); n != sum.grams {
		t.Fatalf("stored %d g, want %d", n, sum.grams)
	}
	if n := f.Count(t, `SELECT coalesce(sum(total_g), 0) FROM recycling.collector_years`); n != sum.grams {
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
		w := store.NewWriter(ctx, key, "text/csv", partSize)
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

// TestImportKeyConfined refuses keys outside IMPORT_PREFIX with a 400
// naming key, before anything is read or written.
func TestImportKeyConfined(t *testing.T) {
	t.Parallel()
	f := setup(t)
	good := csvFile(t, recycling.CSVHeader)
	f.put(t, "forum/roster.csv", good)
	f.put(t, "imports/ok.csv", good)
	for _, key := range []string{
		"forum/roster.csv",            // another folder
		"imports/../forum/roster.csv", // climbs out
		"imports/a/../ok.csv",         // .. inside
		"imports/./ok.csv",            // . segment
		"..",                          //
		"/imports/ok.csv",             // absolute
		"imports//ok.csv",             // empty segment
		"imports/",                    // the folder itself
		"imports\\..\\x.csv",          // backslashes
		"importsX/ok.csv",             // a sibling folder sharing the prefix's letters
	} {
		t.Run("Err"+key, func(t *testing.T) {
			r := f.send(t, contract.TypeTradesImported, week, importData("B-KEY", key))
			if r.Status != 400 || r.Problem()["field"] != "key" {
				t.Fatalf("key %q: got %d %s, want 400 naming key", key, r.Status, r.Body)
			}
			if strings.Contains(string(r.Body), "tradeId") {
				t.Fatalf("key %q: the answer quotes the object: %s", key, r.Body)
			}
		})
	}
	if n := f.Count(t, `SELECT count(*) FROM recycling.batches`); n != 0 {
		t.Fatalf("%d batches recorded by refused keys", n)
	}
	t.Run("OtherPrefix", func(t *testing.T) {
		g := setup(t, "IMPORT_PREFIX=uploads/recycling/")
		g.put(t, "uploads/recycling/ok.csv", good)
		g.put(t, "imports/ok.csv", good)
		if r := g.send(t, contract.TypeTradesImported, week, importData("B-OK", "uploads/recycling/ok.csv")); r.Status != 200 {
			t.Fatalf("under the prefix: %d %s", r.Status, r.Body)
		}
		if r := g.send(t, contract.TypeTradesImported, week, importData("B-NO", "imports/ok.csv")); r.Status != 400 || r.Problem()["field"] != "key" {
			t.Fatalf("outside the prefix: %d %s", r.Status, r.Body)
		}
	})
	t.Run("ErrBadPrefix", func(t *testing.T) {
		for _, p := range []string{"", "/imports/", "imports", "imports/../"} {
			out, err := functest.RunConfigOnly(t, binary, "DATABASE_URL=postgres://x/y", "S3_BUCKET=b", "IMPORT_PREFIX="+p)
			if err == nil || !strings.Contains(string(out), "IMPORT_PREFIX") {
				t.Fatalf("IMPORT_PREFIX=%q: %v %s", p, err, out)
			}
		}
	})
}

// TestImportErrorsFormulas checks that errors.csv cells cannot be read
// as spreadsheet formulas.
func TestImportErrorsFormulas(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.licence(t, "L-A", collectorA, 1000)
	at := "2026-11-20T10:00:00+08:00"
	hyper := row(`=HYPERLINK("http://x")`, "M-1", collectorA, "L-A", "1", "10.000", at) // invalid trade id
	calc := row("T-2", "+cmd|calc", collectorA, "L-A", "1", "10.000", at)
	calcAgain := row("T-3", "+cmd|calc", collectorA, "L-A", "1", "10.000", at) // invalid manifestNo too
	sum := row("T-4", "@SUM(1)", collectorA, "L-A", "1", "1.2345", at)         // invalid weight
	wide := row("T-5", "－1+1", collectorA, "L-A", "1", "1.2345", at)           // full-width minus
	f.put(t, "imports/formulas.csv", csvFile(t, recycling.CSVHeader, hyper, calc, calcAgain, sum, wide))
	r := f.send(t, contract.TypeTradesImported, week, importData("B-F", "imports/formulas.csv"))
	var rep contract.ImportCompleted
	r.DataInto(t, &rep)
	body, err := f.Store.Get(context.Background(), rep.ErrorsKey)
	if err != nil {
		t.Fatal(err)
	}
	recs := readCSV(t, body)
	// Header and five rows: "+cmd|calc" is no manifest number under the
	// canonical form of issue 12, so rows 3 and 4 are both invalid.
	if len(recs) != 6 {
		t.Fatalf("errors.csv:\n%s", body)
	}
	for _, rec := range recs[1:] {
		for i, c := range rec {
			if c != "" && strings.ContainsRune("=+-@\t\r", rune(c[0])) || strings.HasPrefix(c, "－") {
				t.Fatalf("errors.csv row %s column %d = %q reads as a formula:\n%s", rec[0], i, c, body)
			}
		}
	}
	if recs[1][1] != `'=HYPERLINK("http://x")` || recs[2][2] != "'+cmd|calc" || recs[3][2] != "'+cmd|calc" || recs[4][2] != "'@SUM(1)" || recs[5][2] != "'－1+1" {
		t.Fatalf("errors.csv:\n%s", body)
	}
}

// setupProxied is setup with the function reaching Postgres and S3
// through proxies the test can take down (DatabaseProxy, S3Proxy); the
// fixture's own pool and store go direct.
func setupProxied(t *testing.T, extra ...string) *fixture {
	t.Helper()
	return &fixture{functest.Setup(t, binary, functest.Parts{S3: true, ProxyDatabase: true, ProxyS3: true, Env: extra})}
}

// faultFile is an import of 40 rows in chunks of 5: rows 2–36 of
// collector A (with a malformed row, a repeated manifest and, at the end,
// rows past A's capacity), rows 37–41 (the last chunk) of collector B.
func faultFile(t *testing.T) []byte {
	recs := [][]string{recycling.CSVHeader}
	at := "2026-11-20T10:00:00+08:00"
	for i := 2; i <= 36; i++ {
		r := row(fmt.Sprintf("A%d", i), fmt.Sprintf("MA%d", i), collectorA, "L-A", "2", "30.500", at)
		switch i {
		case 9:
			r[9] = "30.5001"
		case 17:
			r[1] = "MA12"
		}
		recs = append(recs, r)
	}
	for i := 37; i <= 41; i++ {
		recs = append(recs, row(fmt.Sprintf("B%d", i), fmt.Sprintf("MB%d", i), collectorB, "L-B", "2", "30.500", at))
	}
	return csvFile(t, recs...)
}

// faultLicences registers the licences of faultFile: A's capacity ends
// the accepted rows at 1,000 kg (32 rows of 30.5 kg).
func faultLicences(t *testing.T, f *fixture) {
	f.licence(t, "L-A", collectorA, 1000)
	f.licence(t, "L-B", collectorB, 100000)
}

// importOnce imports a file in one go on a fresh fixture: the reference
// the interrupted imports must equal.
func importOnce(t *testing.T, file []byte, licences func(*testing.T, *fixture), extra ...string) (contract.ImportCompleted, []byte) {
	t.Helper()
	f := setup(t, extra...)
	licences(t, f)
	f.put(t, "imports/file.csv", file)
	r := f.send(t, contract.TypeTradesImported, week, importData("B-F", "imports/file.csv"))
	var rep contract.ImportCompleted
	r.DataInto(t, &rep)
	body, err := f.Store.Get(context.Background(), rep.ErrorsKey)
	if err != nil {
		t.Fatal(err)
	}
	return rep, body
}

// holdYear locks a collector's 2026 row, so the import's chunk with that
// collector's rows waits; the returned function lets it go.
func holdYear(t *testing.T, f *fixture, collector string) func() {
	t.Helper()
	ctx := context.Background()
	if _, err := f.Pool.Exec(ctx, `INSERT INTO recycling.collector_years (collector_uscc, year) VALUES ($1, 2026)
		ON CONFLICT DO NOTHING`, collector); err != nil {
		t.Fatal(err)
	}
	hold, err := f.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hold.Exec(ctx, `SELECT 1 FROM recycling.collector_years WHERE collector_uscc = $1 FOR UPDATE`, collector); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release := func() { once.Do(func() { _ = hold.Rollback(ctx) }) }
	t.Cleanup(release)
	return release
}

// sendAsync sends ev and delivers the answer on the channel.
func sendAsync(t *testing.T, fn *functest.Instance, ev cloudevents.Event) <-chan *functest.Response {
	out := make(chan *functest.Response, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, fn.URL+"/", nil)
		if err := cehttp.WriteRequest(context.Background(), binding.ToMessage(&ev), req); err != nil {
			out <- &functest.Response{Body: []byte(err.Error())}
			return
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			out <- &functest.Response{Body: []byte(err.Error())}
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		out <- &functest.Response{Status: resp.StatusCode, Header: resp.Header, Body: body}
	}()
	return out
}

func waitRowsDone(t *testing.T, f *fixture, batchID string, n int64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for f.Count(t, `SELECT coalesce((SELECT rows_done FROM recycling.batches WHERE batch_id = $1), 0)`, batchID) != n {
		if time.Now().After(deadline) {
			t.Fatalf("the import did not get to row %d", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitLockWait waits until a session of the test database waits on a row
// lock (the import's chunk queued behind holdYear).
func waitLockWait(t *testing.T, f *fixture) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for f.Count(t, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the import never waited on the held row")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestImportFaults fails Postgres and S3 at chosen points of an import:
// the answer is 503 saying how many rows are stored, what is stored is
// exactly that, and the retry ends with the reply and errors.csv of an
// import that ran in one go.
func TestImportFaults(t *testing.T) {
	t.Parallel()
	file := faultFile(t)
	wantRep, wantErrors := importOnce(t, file, faultLicences, "RECYCLING_IMPORT_CHUNK_ROWS=5")
	if wantRep.Accepted != 37 || wantRep.Rejected != 3 {
		t.Fatalf("reference import: %+v\n%s", wantRep, wantErrors)
	}
	check := func(t *testing.T, p *fixture, ev cloudevents.Event) {
		t.Helper()
		r := p.Fn.Retry(t, ev, 10*time.Second)
		var rep contract.ImportCompleted
		r.DataInto(t, &rep)
		if rep != wantRep {
			t.Fatalf("reply after the retry = %+v, want %+v", rep, wantRep)
		}
		body, err := p.Store.Get(context.Background(), rep.ErrorsKey)
		if err != nil || !bytes.Equal(body, wantErrors) {
			t.Fatalf("errors.csv after the retry (%v):\n%s\nwant:\n%s", err, body, wantErrors)
		}
		if n := p.Count(t, `SELECT count(*) FROM recycling.trades`); n != 37 {
			t.Fatalf("%d trades, want 37", n)
		}
		if g := p.yearTotal(t, collectorA, 2026); g != 32*30500 {
			t.Fatalf("collector A total %d g", g)
		}
	}
	stored := func(t *testing.T, p *fixture, r *functest.Response, rowsDone int64) {
		t.Helper()
		if r.Status != 503 {
			t.Fatalf("got %d %s, want 503", r.Status, r.Body)
		}
		detail, _ := r.Problem()["detail"].(string)
		if !strings.Contains(detail, fmt.Sprintf("rows 2–%d", rowsDone)) || !strings.Contains(detail, "a retry") ||
			strings.Contains(detail, "nothing was written") {
			t.Fatalf("503 detail %q, want rows 2–%d stored and a retry resuming", detail, rowsDone)
		}
		if n := p.Count(t, `SELECT rows_done FROM recycling.batches WHERE batch_id = 'B-F'`); n != rowsDone {
			t.Fatalf("rows_done %d, the answer said %d", n, rowsDone)
		}
		if n := p.Count(t, `SELECT count(*) FROM recycling.trades`) + p.Count(t, `SELECT count(*) FROM recycling.import_errors`); n != rowsDone-1 {
			t.Fatalf("%d rows stored, the answer said %d", n, rowsDone-1)
		}
	}

	t.Run("PostgresAtChunk8", func(t *testing.T) {
		t.Parallel()
		p := setupProxied(t, "RECYCLING_IMPORT_CHUNK_ROWS=5")
		faultLicences(t, p)
		p.put(t, "imports/file.csv", file)
		release := holdYear(t, p, collectorB)
		ev := functest.Event(contract.TypeTradesImported, portalSrc, nextID(), week, importData("B-F", "imports/file.csv"))
		answer := sendAsync(t, p.Fn, ev)
		waitRowsDone(t, p, "B-F", 36) // seven chunks stored, the eighth waits
		// The seventh chunk's commit is visible before its answer reaches the
		// function (through PgBouncer, noticeably later): cut the database
		// only once the function waits on the held row, past that answer.
		waitLockWait(t, p)
		p.DatabaseProxy.SetDown(true)
		r := <-answer
		release()
		stored(t, p, r, 36)
		if !strings.Contains(r.Problem()["detail"].(string), "32 accepted, 3 refused") {
			t.Fatalf("detail %q", r.Problem()["detail"])
		}
		p.DatabaseProxy.SetDown(false)
		check(t, p, ev)
	})
	t.Run("S3AtErrorsCSV", func(t *testing.T) {
		t.Parallel()
		p := setupProxied(t, "RECYCLING_IMPORT_CHUNK_ROWS=5")
		faultLicences(t, p)
		p.put(t, "imports/file.csv", file)
		release := holdYear(t, p, collectorB)
		ev := functest.Event(contract.TypeTradesImported, portalSrc, nextID(), week, importData("B-F", "imports/file.csv"))
		answer := sendAsync(t, p.Fn, ev)
		waitRowsDone(t, p, "B-F", 36) // the whole (small) file is read by now
		p.S3Proxy.SetDown(true)
		release()
		r := <-answer
		stored(t, p, r, 41)
		if d := r.Problem()["detail"].(string); !strings.Contains(d, "errors.csv") {
			t.Fatalf("detail %q", d)
		}
		p.S3Proxy.SetDown(false)
		check(t, p, ev)
	})
	t.Run("DuplicateDeliveries", func(t *testing.T) {
		// Three deliveries of one event and two events of the same batch,
		// all at once: one import.
		t.Parallel()
		f := setup(t, "RECYCLING_IMPORT_CHUNK_ROWS=5")
		faultLicences(t, f)
		f.put(t, "imports/file.csv", file)
		release := holdYear(t, f, collectorA)
		ev := functest.Event(contract.TypeTradesImported, portalSrc, nextID(), week, importData("B-F", "imports/file.csv"))
		other := functest.Event(contract.TypeTradesImported, portalSrc, nextID(), week.Add(time.Minute), importData("B-F", "imports/file.csv"))
		var answers []<-chan *functest.Response
		for _, e := range []cloudevents.Event{ev, ev, other, ev, other} {
			answers = append(answers, sendAsync(t, f.Fn, e))
		}
		time.Sleep(300 * time.Millisecond) // let them all queue on the held row
		release()
		var first []byte
		for i, a := range answers {
			r := <-a
			if r.Status != 200 {
				t.Fatalf("delivery %d: %d %s", i, r.Status, r.Body)
			}
			if first == nil {
				first = r.Body
			}
		}
		rep, body := contract.ImportCompleted{}, []byte(nil)
		r := f.Fn.Send(t, ev)
		r.DataInto(t, &rep)
		if rep != wantRep {
			t.Fatalf("reply %+v, want %+v", rep, wantRep)
		}
		body, _ = f.Store.Get(context.Background(), rep.ErrorsKey)
		if !bytes.Equal(body, wantErrors) {
			t.Fatalf("errors.csv:\n%s", body)
		}
		if n := f.Count(t, `SELECT count(*) FROM recycling.trades`); n != 37 {
			t.Fatalf("%d trades, want 37", n)
		}
		if g := f.yearTotal(t, collectorA, 2026); g != 32*30500 {
			t.Fatalf("collector A total %d g", g)
		}
		if n := f.Count(t, `SELECT count(*) FROM recycling.import_errors`); n != 3 {
			t.Fatalf("%d refused rows recorded, want 3", n)
		}
	})
}

// TestImportS3Stream cuts S3 while a larger file is still streaming: the
// rows read before the cut are stored, the answer says how many, and the
// retry (reopening the object and skipping the stored rows) ends as an
// import in one go would.
func TestImportS3Stream(t *testing.T) {
	t.Parallel()
	g := newGenerator()
	var buf bytes.Buffer
	if _, err := g.write(&buf, 60000, "S"); err != nil { // about 9 MiB
		t.Fatal(err)
	}
	file := buf.Bytes()
	licences := func(t *testing.T, f *fixture) {
		for i, l := range g.licences {
			capacity := 1_000_000_000
			if i == 0 {
				capacity = 1_000_000 // reached in the middle of the file
			}
			f.licence(t, l.no, l.uscc, capacity)
		}
	}
	wantRep, wantErrors := importOnce(t, file, licences, "RECYCLING_IMPORT_CHUNK_ROWS=2000")

	p := setupProxied(t, "RECYCLING_IMPORT_CHUNK_ROWS=2000")
	licences(t, p)
	p.put(t, "imports/file.csv", file)
	release := holdYear(t, p, g.licences[1].uscc)
	ev := functest.Event(contract.TypeTradesImported, portalSrc, nextID(), week, importData("B-F", "imports/file.csv"))
	// The bucket goes away after 2 MiB of the 9 MiB file, however much of
	// it the kernel's buffers would otherwise hold by now.
	p.S3Proxy.CutAfter(2 << 20)
	answer := sendAsync(t, p.Fn, ev)
	waitRowsDone(t, p, "B-F", 1) // the first chunk waits
	release()
	r := <-answer
	if r.Status != 503 {
		t.Fatalf("got %d %s, want 503", r.Status, r.Body)
	}
	done := p.Count(t, `SELECT rows_done FROM recycling.batches WHERE batch_id = 'B-F'`)
	if done <= 1 || done >= 60001 {
		t.Fatalf("rows_done %d: the cut was not in the middle of the file", done)
	}
	t.Logf("S3 cut after row %d of 60001: %s", done, r.Body)
	detail, _ := r.Problem()["detail"].(string)
	if !strings.Contains(detail, fmt.Sprintf("rows 2–%d of the file are stored", done)) ||
		!strings.Contains(detail, fmt.Sprintf("a retry resumes at row %d", done+1)) {
		t.Fatalf("detail %q, rows_done %d", detail, done)
	}
	p.S3Proxy.SetDown(false)
	r = p.Fn.Retry(t, ev, 10*time.Second)
	var rep contract.ImportCompleted
	r.DataInto(t, &rep)
	if rep != wantRep {
		t.Fatalf("reply after the retry = %+v, want %+v", rep, wantRep)
	}
	body, err := p.Store.Get(context.Background(), rep.ErrorsKey)
	if err != nil || !bytes.Equal(body, wantErrors) {
		t.Fatalf("errors.csv after the retry differs from the one-go import (%v)", err)
	}
}

// TestImportDuplicatesFirst checks that rows duplicating trades on record
// are refused as duplicate_manifest whatever else is wrong with them, and
// that their weight never counts toward the capacity of the rows after
// them (the import does not look keys up before it inserts).
func TestImportDuplicatesFirst(t *testing.T) {
	t.Parallel()
	f := setup(t, "RECYCLING_IMPORT_CHUNK_ROWS=3")
	f.licence(t, "L-A", collectorA, 100)
	at := "2026-11-20T10:00:00+08:00"
	wantAccepted(t, f.trade(t, tradeData("T-OLD", "M-OLD", collectorA, "L-A", 1, "10.000", "2026-11-01T10:00:00+08:00")))
	f.put(t, "imports/dups.csv", csvFile(t, recycling.CSVHeader,
		row("T-A", "M-OLD", collectorA, "L-A", "1", "30.000", at),  // 2 duplicate (manifest on record)
		row("T-B", "M-B", collectorA, "L-A", "1", "75.000", at),    // 3 ok: 85 kg
		row("T-C", "M-C", collectorA, "L-A", "1", "20.000", at),    // 4 capacity: 105 kg
		row("T-D", "M-D", collectorA, "L-A", "1", "15.000", at),    // 5 ok: exactly 100 kg
		row("T-OLD", "M-E", collectorA, "L-404", "1", "1.000", at), // 6 duplicate (trade id), though the licence is unknown
		row("T-F", "M-OLD", collectorA, "L-A", "1", "500.000", at), // 7 duplicate, though implausible
		row("T-A", "M-G", collectorA, "L-A", "1", "1.000", at),     // 8 capacity: T-A's row 2 was refused, so this is judged on its own
	))
	r := f.send(t, contract.TypeTradesImported, week, importData("B-D", "imports/dups.csv"))
	var rep contract.ImportCompleted
	r.DataInto(t, &rep)
	if rep.Accepted != 2 || rep.Rejected != 5 {
		t.Fatalf("reply %+v", rep)
	}
	body, _ := f.Store.Get(context.Background(), rep.ErrorsKey)
	recs := readCSV(t, body)
	want := [][2]string{{"2", "duplicate_manifest"}, {"4", "capacity_exceeded"}, {"6", "duplicate_manifest"},
		{"7", "duplicate_manifest"}, {"8", "capacity_exceeded"}}
	if len(recs) != len(want)+1 {
		t.Fatalf("errors.csv:\n%s", body)
	}
	for i, w := range want {
		if recs[i+1][0] != w[0] || recs[i+1][3] != w[1] {
			t.Fatalf("errors.csv row %d = %v, want %v\n%s", i+1, recs[i+1], w, body)
		}
	}
	if g := f.yearTotal(t, collectorA, 2026); g != 100000 {
		t.Fatalf("collector A total %d g, want 100000", g)
	}
	var occurred, recorded time.Time
	var batchID string
	if err := f.Pool.QueryRow(context.Background(), `SELECT occurred_at, recorded_at, batch_id FROM recycling.trades
		WHERE manifest_no = 'M-B'`).Scan(&occurred, &recorded, &batchID); err != nil {
		t.Fatal(err)
	}
	if want, _ := time.Parse(time.RFC3339, at); !occurred.Equal(want) || !recorded.Equal(week) || batchID != "B-D" {
		t.Fatalf("stored occurred_at %v, recorded_at %v, batch %q", occurred, recorded, batchID)
	}
}

// startPgBouncer runs PgBouncer in transaction mode in front of the test
// cluster of dbURL, with few server connections so the function's
// transactions share them, and returns the URL through it (statements
// unnamed, as behind any transaction pooler). It skips the test where
// pgbouncer is not installed.
func startPgBouncer(t *testing.T, dbURL string) string {
	t.Helper()
	bin, err := exec.LookPath("pgbouncer")
	if err != nil {
		t.Skip("pgbouncer is not installed")
	}
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "qinqing-pgbouncer-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	port := functest.FreePort(t)
	users := fmt.Sprintf("%q \"\"\n%q \"\"\n", u.User.Username(), postgres.LoginRole(name))
	ini := fmt.Sprintf(`[databases]
* = host=%s port=%s
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = trust
auth_file = %s/users.txt
pool_mode = transaction
default_pool_size = 3
max_client_conn = 100
ignore_startup_parameters = extra_float_digits
logfile = %s/pgbouncer.log
`, u.Hostname(), u.Port(), port, dir, dir)
	for file, body := range map[string]string{"users.txt": users, "pgbouncer.ini": ini} {
		if err := os.WriteFile(filepath.Join(dir, file), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	args := []string{bin, filepath.Join(dir, "pgbouncer.ini")}
	if os.Geteuid() == 0 { // pgbouncer refuses to run as root
		args = append([]string{"runuser", "-u", "postgres", "--"}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...) // it logs to pgbouncer.log, shown when the test fails
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "pgbouncer.log"))
			t.Logf("pgbouncer.log:\n%s", log)
		}
	})
	t.Cleanup(func() { // SIGTERM is PgBouncer's immediate shutdown
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
		}
	})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "pgbouncer.log"))
			t.Fatalf("pgbouncer did not listen:\n%s", log)
		}
	}
	u.Host = fmt.Sprintf("127.0.0.1:%d", port)
	q := u.Query()
	q.Set("default_query_exec_mode", "exec")
	u.RawQuery = q.Encode()
	return u.String()
}

// TestImportBehindPgBouncer imports behind PgBouncer in transaction mode:
// an interrupted import resumes, and concurrent deliveries import once,
// with the same reply and errors.csv as a direct import in one go. The
// stage takes no session lock, LISTENs to nothing and keeps nothing past
// a transaction, so sharing server connections changes nothing.
func TestImportBehindPgBouncer(t *testing.T) {
	t.Parallel()
	file := faultFile(t)
	wantRep, wantErrors := importOnce(t, file, faultLicences, "RECYCLING_IMPORT_CHUNK_ROWS=5")
	dbURL := pgtest.URL(t)
	s3, store := s3test.New(t)
	env := append([]string{"DATABASE_URL=" + startPgBouncer(t, dbURL), "DATABASE_POOLER=pgbouncer-transaction",
		"RECYCLING_IMPORT_CHUNK_ROWS=5"}, s3.Env()...)
	f := &fixture{&functest.Fixture{Fn: functest.Start(t, binary, env...), Pool: pgtest.PoolFor(t, dbURL), S3: s3, Store: store, Env: env}}
	faultLicences(t, f)
	f.put(t, "imports/file.csv", file)

	// The process dies while the last chunk waits; a new one gets the
	// event four times at once and they finish the import together.
	release := holdYear(t, f, collectorB)
	ev := functest.Event(contract.TypeTradesImported, portalSrc, nextID(), week, importData("B-F", "imports/file.csv"))
	_ = sendAsync(t, f.Fn, ev)
	waitRowsDone(t, f, "B-F", 36)
	f.Fn.Kill()
	f.Fn = functest.Start(t, binary, env...)
	var answers []<-chan *functest.Response
	for i := 0; i < 4; i++ {
		answers = append(answers, sendAsync(t, f.Fn, ev))
	}
	time.Sleep(200 * time.Millisecond) // let them queue on the held row
	release()
	for i, a := range answers {
		if r := <-a; r.Status != 200 {
			t.Fatalf("delivery %d: %d %s", i, r.Status, r.Body)
		}
	}
	r := f.Fn.Send(t, ev)
	var rep contract.ImportCompleted
	r.DataInto(t, &rep)
	if rep != wantRep {
		t.Fatalf("reply %+v, want %+v", rep, wantRep)
	}
	body, _ := f.Store.Get(context.Background(), rep.ErrorsKey)
	if !bytes.Equal(body, wantErrors) {
		t.Fatalf("errors.csv:\n%s\nwant:\n%s", body, wantErrors)
	}
	if n := f.Count(t, `SELECT count(*) FROM recycling.trades`); n != 37 {
		t.Fatalf("%d trades, want 37", n)
	}
	if g := f.yearTotal(t, collectorA, 2026); g != 32*30500 {
		t.Fatalf("collector A total %d g", g)
	}
}
