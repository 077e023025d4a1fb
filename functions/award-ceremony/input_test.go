package main

import (
	"strings"
	"testing"
	"time"

	"github.com/qinqing/qinqing/shared/contract"
	"github.com/qinqing/qinqing/shared/postgres/pgtest"
	"github.com/qinqing/qinqing/shared/runtime/functest"
)

// TestTextFieldsAreBadInputNotFaults is finding 2 of issue 12 for awards:
// U+0000 in the metrics name, the nomination's texts or the judge is a
// 400 naming the field with nothing written (not a 500), and nominatedBy
// has a length limit.
func TestTextFieldsAreBadInputNotFaults(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.must(t, contract.TypeNominationSubmitted, awardsSource, week, nominationData("N1", contract.AwardGoodCase, "好案例"), contract.TypeNominationAccepted)
	nom := func(edit func(d map[string]any)) map[string]any {
		d := nominationData("N2", contract.AwardGoodCase, "好案例2号")
		edit(d)
		return d
	}
	cases := []struct {
		name, typ, source, field string
		data                     map[string]any
	}{
		{"MetricsName", contract.TypeMetricsReported, statsSource, "name", metricsData(1, "湖州\x00企业", true, 1, 1)},
		{"NomineeName", contract.TypeNominationSubmitted, awardsSource, "nominee.name", nom(set("nominee.name", "\x00"))},
		{"NomineeDepartment", contract.TypeNominationSubmitted, awardsSource, "nominee.department", nom(set("nominee.department", "市\x00局"))},
		{"NominatedBy", contract.TypeNominationSubmitted, awardsSource, "nominatedBy", nom(set("nominatedBy", "市委\x00"))},
		{"NominatedByTooLong", contract.TypeNominationSubmitted, awardsSource, "nominatedBy", nom(set("nominatedBy", strings.Repeat("x", 100000)))},
		{"Citation", contract.TypeNominationSubmitted, awardsSource, "citation", nom(set("citation", "实干\x00争先"))},
		{"NominationIDNUL", contract.TypeNominationSubmitted, awardsSource, "nominationId", nom(set("nominationId", "N2\x00"))},
		{"Judge", contract.TypeScoreRecorded, judgesSource, "judge", scoreData("N1", "judge\x00-1", 80)},
		{"JudgeZeroWidth", contract.TypeScoreRecorded, judgesSource, "judge", scoreData("N1", "judge-1\u200b", 80)},
		{"JudgeTrailingSpace", contract.TypeScoreRecorded, judgesSource, "judge", scoreData("N1", "judge-1 ", 80)},
		{"JudgeHyphenLookalike", contract.TypeScoreRecorded, judgesSource, "judge", scoreData("N1", "judge\u20101", 80)},
		{"ScoreNominationIDZeroWidth", contract.TypeScoreRecorded, judgesSource, "nominationId", scoreData("N1\u200b", "judge-1", 80)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := pgtest.Rows(t, f.Pool)
			functest.WantInvalid(t, f.send(t, tc.typ, tc.source, week, tc.data), tc.field)
			if after := pgtest.Rows(t, f.Pool); after != before {
				t.Fatalf("%d rows written by a 400", after-before)
			}
		})
	}
}

// TestJudgeOneKey: a judge's name is normalised (NFKC, lower case) before
// it keys "one score per judge and nomination", so the spellings of one
// judge leave one score, stored and replied in the key form.
func TestJudgeOneKey(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.must(t, contract.TypeNominationSubmitted, awardsSource, week, nominationData("N1", contract.AwardGoodCase, "好案例"), contract.TypeNominationAccepted)
	for i, judge := range []string{"judge-01", "Judge-01", "ｊｕｄｇｅ－０１", "JUDGE-01"} {
		r := f.must(t, contract.TypeScoreRecorded, judgesSource, week.Add(time.Duration(i)*time.Minute), scoreData("N1", judge, 80+i), contract.TypeScoreAccepted)
		if r.Data()["judge"] != "judge-01" {
			t.Fatalf("%q replied as judge %v, want judge-01", judge, r.Data()["judge"])
		}
	}
	if n := f.Count(t, `SELECT count(*) FROM award.scores WHERE nomination_id = 'N1'`); n != 1 {
		t.Fatalf("%d scores of one judge, want 1", n)
	}
	if n := f.Count(t, `SELECT score FROM award.scores WHERE nomination_id = 'N1' AND judge = 'judge-01'`); n != 83 {
		t.Fatalf("score = %d, want the latest (83)", n)
	}
}
