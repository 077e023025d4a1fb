package main

import (
	"strings"
	"testing"

	"github.com/qinqing/qinqing/shared/contract"
	"github.com/qinqing/qinqing/shared/event"
	"github.com/qinqing/qinqing/shared/postgres/pgtest"
	"github.com/qinqing/qinqing/shared/runtime/functest"
)

// edit changes one field of an event's data (path "a.b" or "a[1].b").
type edit func(d map[string]any)

func setField(path string, v any) edit {
	return func(d map[string]any) {
		var cur any = d
		parts := strings.Split(path, ".")
		for i, p := range parts {
			name, idx := p, -1
			if j := strings.IndexByte(p, '['); j >= 0 {
				name = p[:j]
				idx = int(p[j+1] - '0')
			}
			m := cur.(map[string]any)
			last := i == len(parts)-1
			if idx < 0 {
				if last {
					m[name] = v
					return
				}
				cur = m[name]
				continue
			}
			list := m[name].([]any)
			if last {
				list[idx] = v
				return
			}
			cur = list[idx]
		}
	}
}

// TestTextFieldsAreBadInputNotFaults is finding 2 of issue 12 for this
// function: U+0000 (and other control characters) in any text field is a
// 400 naming the field with its array index, nothing written, never the
// 500 a retried poison event got; over-long text too (nominatedBy had no
// limit), and mistyped values inside arrays keep their index.
func TestTextFieldsAreBadInputNotFaults(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.schedule(t, "F1", 30, 10)
	signup := func() map[string]any {
		d := signupData("F1", event.SampleUSCC(500), "nominated")
		d["problems"] = []any{
			map[string]any{"title": "用地", "detail": "扩建", "category": "land"},
			map[string]any{"title": "融资", "detail": "贷款", "category": "finance"},
			map[string]any{"title": "用工", "detail": "招工", "category": "labour"},
		}
		d["documents"] = []any{
			map[string]any{"fileName": "a.pdf", "contentType": "application/pdf", "sizeBytes": 10},
			map[string]any{"fileName": "b.pdf", "contentType": "application/pdf", "sizeBytes": 10},
			map[string]any{"fileName": "c.pdf", "contentType": "application/pdf", "sizeBytes": 10},
		}
		return d
	}
	cases := []struct {
		name, typ string
		data      func() map[string]any
		edit      edit
		field     string
	}{
		{"Theme", contract.TypeForumScheduled, func() map[string]any { return scheduleData("F2", 3, 0) }, setField("theme", "数字\x00经济"), "theme"},
		{"HostLeader", contract.TypeForumScheduled, func() map[string]any { return scheduleData("F2", 3, 0) }, setField("hostLeader", "市长\x00"), "hostLeader"},
		{"Venue", contract.TypeForumScheduled, func() map[string]any { return scheduleData("F2", 3, 0) }, setField("venue", "\x00"), "venue"},
		{"ForumIDNUL", contract.TypeForumScheduled, func() map[string]any { return scheduleData("F2\x00", 3, 0) }, setField("county", "city"), "forumId"},
		{"DeadlineOffset24", contract.TypeForumScheduled, func() map[string]any { return scheduleData("F2", 3, 0) }, setField("signupDeadline", "2026-12-01T17:00:00+24:00"), "signupDeadline"},
		{"EnterpriseName", contract.TypeSignupRequested, signup, setField("enterprise.name", "湖州\x00企业"), "enterprise.name"},
		{"ContactName", contract.TypeSignupRequested, signup, setField("contact.name", "张\x00三"), "contact.name"},
		{"Topic", contract.TypeSignupRequested, signup, setField("topic", "融资\x00难"), "topic"},
		{"TopicBell", contract.TypeSignupRequested, signup, setField("topic", "\a"), "topic"},
		{"NominatedBy", contract.TypeSignupRequested, signup, setField("nominatedBy", "市经信局\x00"), "nominatedBy"},
		{"NominatedByTooLong", contract.TypeSignupRequested, signup, setField("nominatedBy", strings.Repeat("局", 100000)), "nominatedBy"},
		{"ProblemTitle", contract.TypeSignupRequested, signup, setField("problems[2].title", "用\x00工"), "problems[2].title"},
		{"ProblemDetail", contract.TypeSignupRequested, signup, setField("problems[1].detail", "\x00"), "problems[1].detail"},
		{"ProblemCategory", contract.TypeSignupRequested, signup, setField("problems[0].category", "land\x00"), "problems[0].category"},
		{"FileName", contract.TypeSignupRequested, signup, setField("documents[1].fileName", "b\x00.pdf"), "documents[1].fileName"},
		{"FileNameZeroWidth", contract.TypeSignupRequested, signup, setField("documents[1].fileName", "b\u200b.pdf"), "documents[1].fileName"},
		{"SizeBytesMistyped", contract.TypeSignupRequested, signup, setField("documents[2].sizeBytes", "10"), "documents[2].sizeBytes"},
		{"ProblemTitleMistyped", contract.TypeSignupRequested, signup, setField("problems[2].title", 5), "problems[2].title"},
		{"ForumIDZeroWidth", contract.TypeSignupRequested, signup, setField("forumId", "F1\u200b"), "forumId"},
		{"ForumIDTrailingSpace", contract.TypeSignupRequested, signup, setField("forumId", "F1 "), "forumId"},
		{"ForumIDHyphenLookalike", contract.TypeSignupRequested, signup, setField("forumId", "2026\u2010W49"), "forumId"},
		{"ForumIDFullWidth", contract.TypeSignupRequested, signup, setField("forumId", "Ｆ1"), "forumId"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := tc.data()
			tc.edit(d)
			before := pgtest.Rows(t, f.Pool)
			functest.WantInvalid(t, f.send(t, tc.typ, week, d), tc.field)
			if after := pgtest.Rows(t, f.Pool); after != before {
				t.Fatalf("%d rows written by a 400", after-before)
			}
		})
	}
	t.Run("ValidSignupStillWorks", func(t *testing.T) {
		if r := f.send(t, contract.TypeSignupRequested, week, signup()); r.Type() != contract.TypeSignupConfirmed {
			t.Fatalf("got %d %s %s", r.Status, r.Type(), r.Body)
		}
	})
}

// TestForumIDOneKey: forumId is an opaque id, compared byte for byte
// (docs/runtime.md): the spellings that look like "2026-W49" are refused,
// so one enterprise holds one seat of the forum at most.
func TestForumIDOneKey(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.schedule(t, "2026-W49", 30, 0)
	code := event.SampleUSCC(600)
	for _, id := range []string{"2026-W49", "2026-W49 ", " 2026-W49", "2026-W49\u200b", "2026\u2010W49", "２０２６-W49", "2026-W49\x00"} {
		r := f.send(t, contract.TypeSignupRequested, week, signupData(id, code, "self"))
		switch {
		case id == "2026-W49":
			if r.Type() != contract.TypeSignupConfirmed {
				t.Fatalf("%q: %d %s", id, r.Status, r.Body)
			}
		default:
			functest.WantInvalid(t, r, "forumId")
		}
	}
	// Case matters in an opaque id: 2026-w49 is another forum, which does
	// not exist.
	if r := f.send(t, contract.TypeSignupRequested, week, signupData("2026-w49", code, "self")); r.Type() != contract.TypeSignupRejected || r.Data()["reason"] != "forum_not_found" {
		t.Fatalf("2026-w49: %d %s", r.Status, r.Body)
	}
	if n := f.Count(t, `SELECT count(*) FROM forum.signups WHERE uscc = $1`, code); n != 1 {
		t.Fatalf("%d signups of one enterprise, want 1", n)
	}
}
