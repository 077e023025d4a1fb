package main

import (
	"fmt"
	"testing"
)

// The PORTALS_FILE webhook-egress and open311 read too: notify blocks and
// API keys are accepted, a portal that only receives updates sends no
// webhooks (404), and the others work as before.
func TestSharedPortalsFile(t *testing.T) {
	t.Parallel()
	f := setupWith(t, "portals.json", fmt.Sprintf(`{"portals": {
  "enterprise": {"secrets": [%q], "allowedTypes": [%q],
                 "notify": {"url": "https://portal.example.com/hook", "secrets": [%q], "types": ["cn.huzhou.appeal.updated"]},
                 "apiKeys": ["enterprise-open311-key"]},
  "hotline":    {"notify": {"url": "https://hotline.example.com/hook", "secrets": [%q], "types": ["cn.huzhou.appeal.updated"]}}
}}`, newSecret, typeAppeal, treasurySecret, treasurySecret))
	if r := f.post(t, newWebhook("enterprise", typeAppeal, appealData, newSecret)); r.Status != 202 {
		t.Fatalf("enterprise: %d %s", r.Status, r.Body)
	}
	if r := f.post(t, newWebhook("hotline", typeAppeal, appealData, treasurySecret)); r.Status != 404 {
		t.Fatalf("notify-only portal: %d %s, want 404", r.Status, r.Body)
	}
	// The notify secret is not an inbound secret.
	if r := f.post(t, newWebhook("enterprise", typeAppeal, appealData, treasurySecret)); r.Status != 401 {
		t.Fatalf("signed with the notify secret: %d, want 401", r.Status)
	}
}
