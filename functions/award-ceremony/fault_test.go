package main

import (
	"bytes"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/qinqing/qinqing/shared/docs/s3test"
	"github.com/qinqing/qinqing/shared/event"
	"github.com/qinqing/qinqing/shared/postgres/pgtest"
	"github.com/qinqing/qinqing/shared/runtime/functest"
)

// An S3 outage during the ceremony answers 5xx and records nothing; the
// retry (the same event) publishes the ceremony and its documents.
func TestS3DownDuringCeremony(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.URL(t)
	s3, store := s3test.New(t)
	su, _ := url.Parse(s3.URL)
	proxy := functest.NewProxy(t, su.Host)
	env := []string{"DATABASE_URL=" + dbURL}
	for _, kv := range s3.Env() {
		if strings.HasPrefix(kv, "S3_ENDPOINT=") {
			kv = "S3_ENDPOINT=http://" + proxy.Addr
		}
		env = append(env, kv)
	}
	f := &fixture{fn: functest.Start(t, binary, env...), pool: pgtest.PoolFor(t, dbURL), store: store}
	f.must(t, TypeMetricsReported, statsSource, week, metricsData(1, "湖州恒达新材料有限公司", true, 100, 1), TypeMetricsAccepted)
	f.must(t, TypeNominationSubmitted, awardsSource, week, nominationData("S1", CategoryStriver, "沈建国"), TypeNominationAccepted)
	f.must(t, TypeScoreRecorded, judgesSource, week, scoreData("S1", "j1", 90), TypeScoreAccepted)

	proxy.SetDown(true)
	ping := functest.Event(event.PingType, pingSource, nextID(), ceremonyAt, map[string]any{"job": "award-ceremony"})
	if r := f.fn.Send(t, ping); r.Status < 500 {
		t.Fatalf("ceremony with S3 down: %d %s, want 5xx", r.Status, r.Body)
	}
	if n := f.count(t, `SELECT count(*) FROM award.ceremonies`); n != 0 {
		t.Fatalf("%d ceremonies recorded by a failed delivery", n)
	}
	if n := f.count(t, `SELECT count(*) FROM qinqing.inbox WHERE type = $1`, event.PingType); n != 0 {
		t.Fatalf("%d inbox rows for a failed delivery", n)
	}
	proxy.SetDown(false)

	var r *functest.Response
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if r = f.fn.Send(t, ping); r.Status == 200 || time.Now().After(deadline) {
			break
		}
	}
	var got Published
	r.DataInto(t, &got)
	if r.Type() != TypeCeremonyPublished || got.Year != 2026 || len(got.Top50) != 1 || len(got.Winners) != 1 || len(got.Documents) != 3 {
		t.Fatalf("retry: %d %s %s", r.Status, r.Type(), r.Body)
	}
	for _, k := range got.Documents {
		if body := f.get(t, k); len(bytes.TrimSpace(body)) == 0 {
			t.Fatalf("%s is empty", k)
		}
	}
}
