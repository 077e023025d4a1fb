package main

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/qinqing/qinqing/shared/contract"
	"github.com/qinqing/qinqing/shared/event"
	"github.com/qinqing/qinqing/shared/runtime/functest"
	"github.com/qinqing/qinqing/shared/testkit"
)

var binary string

func TestMain(m *testing.M) { functest.MainTwice(m, map[string]*string{".": &binary}) }

var (
	// week is Monday of the sample week, 09:00 in Huzhou.
	week = time.Date(2026, 11, 30, 9, 0, 0, 0, testkit.Shanghai)
	// ceremonyAt is when the ceremony job runs, in 2026.
	ceremonyAt = time.Date(2026, 12, 6, 18, 0, 0, 0, testkit.Shanghai)
)

const (
	statsSource  = "/portals/statistics"
	awardsSource = "/portals/awards"
	judgesSource = "/portals/awards/judging"
	pingSource   = "/apis/v1/namespaces/qinqing/pingsources/award-ceremony"
)

type fixture struct{ *functest.Fixture }

// setup starts the function on a fresh database and bucket; env adds to
// (or overrides) the contract environment.
func setup(t *testing.T, env ...string) *fixture {
	t.Helper()
	return &fixture{functest.Setup(t, binary, functest.Parts{S3: true, Env: env})}
}

var nextID = functest.NextID

func (f *fixture) send(t *testing.T, typ, source string, at time.Time, data any) *functest.Response {
	t.Helper()
	return f.Fn.Send(t, functest.Event(typ, source, nextID(), at, data))
}

// must sends an event and fails the test unless the reply has type want.
func (f *fixture) must(t *testing.T, typ, source string, at time.Time, data any, want string) *functest.Response {
	t.Helper()
	r := f.send(t, typ, source, at, data)
	if r.Status != 200 || r.Type() != want {
		t.Fatalf("%s: got %d %q %s, want %s", typ, r.Status, r.Type(), r.Body, want)
	}
	return r
}

func (f *fixture) ping(t *testing.T, at time.Time) *functest.Response {
	t.Helper()
	return f.must(t, event.PingType, pingSource, at, map[string]any{"job": "award-ceremony"}, contract.TypeCeremonyPublished)
}

func (f *fixture) get(t *testing.T, key string) []byte {
	t.Helper()
	b, err := f.Store.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	return b
}

// list returns the keys under prefix, sorted.
func (f *fixture) list(t *testing.T, prefix string) []string {
	t.Helper()
	var keys []string
	pages := s3.NewListObjectsV2Paginator(f.Store.Client(), &s3.ListObjectsV2Input{
		Bucket: aws.String(f.Store.Bucket), Prefix: aws.String(prefix)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Contents {
			keys = append(keys, *o.Key)
		}
	}
	sort.Strings(keys)
	return keys
}

// Factories.

func metricsData(n int, name string, private bool, revenueFen, taxFen int64) map[string]any {
	return map[string]any{
		"uscc": event.SampleUSCC(n), "name": name, "county": "wuxing", "year": 2026, "private": private,
		"revenueFen": revenueFen, "taxFen": taxFen, "employees": 120,
	}
}

func nominationData(id, category, nomineeName string) map[string]any {
	nominee := map[string]any{"name": nomineeName}
	switch category {
	case contract.AwardRunner:
		nominee["county"] = "anji"
	case contract.AwardContributor:
		nominee["uscc"] = event.SampleUSCC(9000 + len(id))
		nominee["county"] = "deqing"
	case contract.AwardGoodCase:
		nominee["department"] = "市市场监管局"
	}
	return map[string]any{
		"nominationId": id, "year": 2026, "category": category, "nominee": nominee,
		"nominatedBy": "市委人才办", "citation": "勇于担当，实干争先。",
	}
}

func scoreData(id, judge string, score any) map[string]any {
	return map[string]any{"nominationId": id, "judge": judge, "score": score}
}
