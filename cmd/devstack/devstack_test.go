package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/qinqing/qinqing/shared/postgres/pgtest"
)

// TestSampleWeek is `make run` without the serving: it builds and starts
// every function, plays the whole sample week through the local broker and
// checks the story it prints. It fails when a week file does not parse, a
// webhook is refused, an event fails delivery, or a function is missing.
func TestSampleWeek(t *testing.T) {
	if testing.Short() {
		t.Skip("plays the whole sample week")
	}
	t.Setenv("DATABASE_URL", pgtest.URL(t))
	t.Chdir("../..")
	var out bytes.Buffer
	stdout = &out
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	err := run(ctx, t.TempDir(), "cmd/devstack/week", false, 0)
	text := out.String()
	if err != nil {
		t.Fatalf("run: %v\n%s", err, text)
	}
	for _, want := range []string{
		"═══ What happened ═══",
		"roster     s3://qinqing/forums/2026-W49/roster.csv",
		"cn.huzhou.forum.weekly.completed",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	// The case's trace reaches the deadline check's escalation.
	if i := strings.Index(text, "═══ One case as a trace"); i >= 0 {
		section := text[i:]
		if j := strings.Index(section, "═══ Metrics"); j > 0 {
			section = section[:j]
		}
		t.Log(section)
		if !strings.Contains(section, "deadline-check") || !strings.Contains(section, "overdue ") {
			t.Errorf("the case's trace does not reach the deadline check:\n%s", section)
		}
	}
	// One event of the week is malformed on purpose (a hotline typo in a
	// USCC): it fails with 400 and is kept by the dead-letter function.
	// Nothing else may fail.
	if n := strings.Count(text, "✗"); n != 1 {
		t.Errorf("output shows %d failed deliveries, want 1 (the malformed hotline appeal)", n)
	}
	for _, want := range []string{
		"1 events failed delivery after retries",
		"pending  cn.huzhou.appeal.submitted hotline-20261204-0031  answered 400",
		"HZ-2026-1204", // arrived through webhook-ingress
		// One case as a trace across three functions and the outbox.
		"═══ One case as a trace",
		"forum-signup     process cn.huzhou.forum.signup.requested",
		"appeal-router      process cn.huzhou.appeal.submitted",
		"═══ Metrics after the week",
		"outbox_pending",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	// The portals receive their updates, signed (webhook-egress): the
	// enterprise portal its own appeal's, and no portal another's.
	for _, want := range []string{
		"✉ enterprise-portal ← cn.huzhou.appeal.assigned appealId=HZ-2026-1204",
		"✉ enterprise-portal ← cn.huzhou.appeal.updated appealId=HZ-2026-1204 status=replied",
		"Portal updates (webhook-egress, signed Standard Webhooks)",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	// Open311: the enterprise portal lists its case of the week, the
	// hotline submits one and reads it back, and neither sees the other's.
	for _, want := range []string{
		"enterprise-portal: GET requests.json (the week) → 2 request(s)",
		"HZ-2026-1204  open   transport",
		"Answered: 夜间配送通行证有效期已延长至一年",
		"hotline-12345: POST requests.json (service_code energy) → 201",
		"(another portal's request is unknown to it)",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(text, "(another portal's request is unknown to it)") && !strings.Contains(text, "json → 404 (another portal's") {
		t.Error("another portal's Open311 request was visible")
	}
	if strings.Contains(text, "signature NOT verified") || strings.Contains(text, "✉ hotline-12345 ← cn.huzhou.appeal.assigned appealId=HZ-2026-1204") {
		t.Error("a portal received an update it should not have, or one that does not verify")
	}
	if strings.Contains(text, "refused") {
		t.Error("a webhook was refused")
	}
	if t.Failed() {
		t.Log(text)
	}
}
