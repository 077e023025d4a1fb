package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/qinqing/qinqing/shared/runtime/functest"
	"github.com/qinqing/qinqing/shared/testkit"
)

// TestDeliveries lists webhook-egress's attempts: one delivered, one
// refused for good by the portal.
func TestDeliveries(t *testing.T) {
	t.Parallel()
	answers := make(chan int, 2)
	answers <- http.StatusNoContent
	answers <- http.StatusGone
	portal := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(<-answers) }))
	defer portal.Close()
	secret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("cli test portal key 2026"))
	file := testkit.WriteFile(t, "portals.json", fmt.Sprintf(`{"portals": {"enterprise": {"notify": {"url": %q, "secrets": [%q],
		"types": ["cn.huzhou.appeal.updated"], "insecure": true, "allowPrivate": true}}}}`, portal.URL, secret))
	k := functest.Setup(t, egressBin, functest.Parts{Env: []string{"PORTALS_FILE=" + file, "ADMIN_TOKEN=" + token}})
	egress := k.Fn
	at := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	if _, err := k.Pool.Exec(context.Background(), `INSERT INTO appeal.appeals (appeal_id, uscc, enterprise_name, county, title,
		channel, status, department, routed_to, received_at, assign_due, first_reply_due, reply_due, updated_at, source, event_id)
		VALUES ('A-1', '91330502MA28C1234X', 'e', 'wuxing', 't', 'portal', 'assigned', 'd', 'd', $1, $1, $1, $1, $1, '/portals/enterprise', 'e1')`, at); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"upd-1", "upd-2"} {
		ev := functest.Event("cn.huzhou.appeal.updated", "/qinqing/appeal-router", id, at, map[string]any{"appealId": "A-1", "status": "accepted"})
		if r := egress.Send(t, ev); r.Status != 200 {
			t.Fatalf("%s: %d %s", id, r.Status, r.Body)
		}
	}
	f := &fixture{}
	env := map[string]string{"QINQING_EGRESS_URL": egress.URL, "ADMIN_TOKEN": token}
	t.Run("List", func(t *testing.T) {
		code, out, errs := f.qinqing(t, env, "deliveries", "list")
		t.Logf("qinqing deliveries list:\n%s", out)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if code != 0 || errs != "" || len(lines) != 4 || !strings.HasPrefix(lines[0], "ATTEMPTED") || lines[3] != "2 delivery attempt(s)" {
			t.Fatalf("exit %d %s:\n%s", code, errs, out)
		}
		// Newest first.
		if f := strings.Fields(lines[1]); f[1] != "enterprise" || f[2] != "failed" || f[3] != "410" || f[7] != "upd-2" {
			t.Fatalf("row %q", lines[1])
		}
		if f := strings.Fields(lines[2]); f[2] != "delivered" || f[3] != "204" || f[7] != "upd-1" || f[8] != "-" {
			t.Fatalf("row %q", lines[2])
		}
	})
	t.Run("Filters", func(t *testing.T) {
		code, out, _ := f.qinqing(t, env, "deliveries", "list", "--status", "failed", "--portal", "enterprise", "--json")
		var l struct{ Items []map[string]any }
		if code != 0 || json.Unmarshal([]byte(out), &l) != nil || len(l.Items) != 1 || l.Items[0]["webhookId"] != "upd-2" {
			t.Fatalf("exit %d:\n%s", code, out)
		}
		if _, out, _ := f.qinqing(t, env, "deliveries", "list", "--portal", "nobody"); strings.TrimSpace(out) != "no deliveries" {
			t.Fatalf("unknown portal:\n%s", out)
		}
	})
	t.Run("Errors", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			env  map[string]string
			args []string
			code int
			want string
		}{
			{"NoURL", map[string]string{"ADMIN_TOKEN": token}, []string{"deliveries", "list"}, 1, "QINQING_EGRESS_URL"},
			{"WrongToken", map[string]string{"QINQING_EGRESS_URL": egress.URL, "ADMIN_TOKEN": "wrong"}, []string{"deliveries", "list"}, 1, "webhook-egress function's ADMIN_TOKEN"},
			{"BadStatus", env, []string{"deliveries", "list", "--status", "lost"}, 2, "--status"},
			{"BadSubcommand", env, []string{"deliveries", "replay"}, 2, "want list"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				code, _, errs := f.qinqing(t, tc.env, tc.args...)
				if code != tc.code || !strings.Contains(errs, tc.want) {
					t.Fatalf("exit %d, stderr %q; want %d and %q", code, errs, tc.code, tc.want)
				}
			})
		}
	})
}
