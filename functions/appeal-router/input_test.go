package main

import (
	"strings"
	"testing"
	"time"

	"github.com/qinqing/qinqing/shared/contract"
	"github.com/qinqing/qinqing/shared/postgres/pgtest"
	"github.com/qinqing/qinqing/shared/runtime/functest"
)

// TestTextFieldsAreBadInputNotFaults is finding 2 of issue 12 for appeals:
// U+0000 in title, detail, category, enterprise.name, forumId or signupId
// (and the answers' texts) is a 400 naming the field with nothing written,
// not the 500 Postgres' SQLSTATE 22021 made of it; the ids follow the one
// identifier rule.
func TestTextFieldsAreBadInputNotFaults(t *testing.T) {
	t.Parallel()
	f := setup(t)
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, cst)
	forum := func() map[string]any {
		d := submitData("A-1", "land", "wuxing")
		d["channel"], d["forumId"], d["signupId"] = "forum", "2026-W49", "0b5c-signup"
		return d
	}
	set := func(d map[string]any, k string, v any) map[string]any {
		if k == "enterprise.name" {
			d["enterprise"].(map[string]any)["name"] = v
		} else {
			d[k] = v
		}
		return d
	}
	cases := []struct {
		name, typ, field string
		data             map[string]any
	}{
		{"Title", contract.TypeAppealSubmitted, "title", set(forum(), "title", "用地\x00")},
		{"Detail", contract.TypeAppealSubmitted, "detail", set(forum(), "detail", "\x00")},
		{"DetailTooLong", contract.TypeAppealSubmitted, "detail", set(forum(), "detail", strings.Repeat("长", 4001))},
		{"Category", contract.TypeAppealSubmitted, "category", set(forum(), "category", "land\x00")},
		{"EnterpriseName", contract.TypeAppealSubmitted, "enterprise.name", set(forum(), "enterprise.name", "湖州\x00")},
		{"ForumID", contract.TypeAppealSubmitted, "forumId", set(forum(), "forumId", "2026-W49\x00")},
		{"ForumIDZeroWidth", contract.TypeAppealSubmitted, "forumId", set(forum(), "forumId", "2026-W49\u200b")},
		{"SignupID", contract.TypeAppealSubmitted, "signupId", set(forum(), "signupId", "\x00")},
		{"SignupIDSpace", contract.TypeAppealSubmitted, "signupId", set(forum(), "signupId", "0b5c-signup ")},
		{"AppealID", contract.TypeAppealSubmitted, "appealId", set(forum(), "appealId", "A-1\u2010x")},
		{"Reason", contract.TypeAppealReturned, "reason", map[string]any{"appealId": "A-1", "department": "tax", "reason": "\x00"}},
		{"Reply", contract.TypeAppealReplied, "reply", map[string]any{"appealId": "A-1", "department": "tax", "reply": "已\x00办"}},
		{"Comment", contract.TypeAppealRevisited, "comment", map[string]any{"appealId": "A-1", "satisfaction": "satisfied", "comment": "\x00"}},
		{"Department", contract.TypeAppealAccepted, "department", map[string]any{"appealId": "A-1", "department": "tax\x00"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := pgtest.Rows(t, f.Pool)
			functest.WantInvalid(t, f.send(t, tc.typ, portalSrc, at, tc.data), tc.field)
			if after := pgtest.Rows(t, f.Pool); after != before {
				t.Fatalf("%d rows written by a 400", after-before)
			}
		})
	}
	t.Run("ValidStillWorks", func(t *testing.T) {
		if a := f.submit(t, at, forum()); a.AppealID != "A-1" {
			t.Fatalf("assignment = %+v", a)
		}
	})
}
