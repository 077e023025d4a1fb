package main

import (
	"bytes"
	"testing"
	"time"

	"github.com/qinqing/qinqing/shared/contract"
	"github.com/qinqing/qinqing/shared/event"
	"github.com/qinqing/qinqing/shared/runtime/functest"
)

// An S3 outage during the ceremony answers 5xx and records nothing; the
// retry (the same event) publishes the ceremony and its documents.
func TestS3DownDuringCeremony(t *testing.T) {
	t.Parallel()
	f := &fixture{functest.Setup(t, binary, functest.Parts{S3: true, ProxyS3: true})}
	proxy := f.S3Proxy
	f.must(t, contract.TypeMetricsReported, statsSource, week, metricsData(1, "湖州恒达新材料有限公司", true, 100, 1), contract.TypeMetricsAccepted)
	f.must(t, contract.TypeNominationSubmitted, awardsSource, week, nominationData("S1", contract.AwardStriver, "沈建国"), contract.TypeNominationAccepted)
	f.must(t, contract.TypeScoreRecorded, judgesSource, week, scoreData("S1", "j1", 90), contract.TypeScoreAccepted)

	proxy.SetDown(true)
	ping := functest.Event(event.PingType, pingSource, nextID(), ceremonyAt, map[string]any{"job": "award-ceremony"})
	if r := f.Fn.Send(t, ping); r.Status < 500 {
		t.Fatalf("ceremony with S3 down: %d %s, want 5xx", r.Status, r.Body)
	}
	if n := f.Count(t, `SELECT count(*) FROM award.ceremonies`); n != 0 {
		t.Fatalf("%d ceremonies recorded by a failed delivery", n)
	}
	if n := f.Count(t, `SELECT count(*) FROM qinqing.inbox WHERE type = $1`, event.PingType); n != 0 {
		t.Fatalf("%d inbox rows for a failed delivery", n)
	}
	proxy.SetDown(false)

	r := f.Fn.Retry(t, ping, 10*time.Second)
	var got contract.CeremonyPublished
	r.DataInto(t, &got)
	if r.Type() != contract.TypeCeremonyPublished || got.Year != 2026 || len(got.Top50) != 1 || len(got.Winners) != 1 || len(got.Documents) != 3 {
		t.Fatalf("retry: %d %s %s", r.Status, r.Type(), r.Body)
	}
	for _, k := range got.Documents {
		if body := f.get(t, k); len(bytes.TrimSpace(body)) == 0 {
			t.Fatalf("%s is empty", k)
		}
	}
}
