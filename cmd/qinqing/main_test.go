package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/qinqing/qinqing/shared/runtime/functest"
)

var deadLetterBin, egressBin, qinqingBin string

func TestMain(m *testing.M) {
	functest.Main(m, map[string]*string{"../../functions/dead-letter": &deadLetterBin,
		"../../functions/webhook-egress": &egressBin, ".": &qinqingBin})
}

const token = "cli-test-token-0123456789"

type fixture struct {
	*functest.Fixture
	// cli is the command's environment, reaching the dead-letter function.
	cli map[string]string
}

// setup starts dead-letter with its admin endpoints on, and a sink.
func setup(t *testing.T) *fixture {
	t.Helper()
	k := functest.Setup(t, deadLetterBin, functest.Parts{Sink: true, Env: []string{"ADMIN_TOKEN=" + token}})
	return &fixture{Fixture: k, cli: map[string]string{"QINQING_DEADLETTER_URL": k.Fn.URL, "ADMIN_TOKEN": token}}
}

// deadLetter posts an event to the dead-letter function as Knative would.
func (f *fixture) deadLetter(t *testing.T, id string) {
	t.Helper()
	ev := functest.Event("cn.huzhou.appeal.submitted", "/portals/enterprise", id, time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC),
		map[string]any{"appealId": id})
	ev.SetExtension("knativeerrordest", "http://broker-filter.knative-eventing.svc.cluster.local/triggers/qinqing/appeal-router/x")
	ev.SetExtension("knativeerrorcode", 500)
	ev.SetExtension("knativeerrordata", base64.StdEncoding.EncodeToString([]byte("boom")))
	if r := f.Fn.Send(t, ev); r.Status != http.StatusAccepted {
		t.Fatalf("dead letter: %d %s", r.Status, r.Body)
	}
}

// qinqing runs the command in-process.
func (f *fixture) qinqing(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, func(k string) string { return env[k] }, &out, &errb)
	return code, out.String(), errb.String()
}

func TestDeadletters(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.deadLetter(t, "msg-a")
	f.deadLetter(t, "msg-b")

	// The ids come from the function's admin API, not from the List
	// subtest: each subtest runs, or fails, on its own.
	ids := f.ids(t)
	t.Run("List", func(t *testing.T) {
		code, out, errs := f.qinqing(t, f.cli, "deadletters", "list")
		if code != 0 || errs != "" {
			t.Fatalf("exit %d: %s", code, errs)
		}
		t.Logf("qinqing deadletters list:\n%s", out)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 4 || !strings.HasPrefix(lines[0], "ID ") || !strings.Contains(lines[0], "ERROR DEST") || lines[3] != "2 dead letter(s)" {
			t.Fatalf("table:\n%s", out)
		}
		for i, l := range lines[1:3] {
			fields := strings.Fields(l)
			if len(fields) != 8 || fields[2] != "pending" || fields[3] != "500" || fields[4] != "cn.huzhou.appeal.submitted" || fields[5] != "/portals/enterprise" {
				t.Fatalf("row %q", l)
			}
			if fields[0] != ids[i] {
				t.Fatalf("row %d has id %s, want %s (the admin API's order)", i+1, fields[0], ids[i])
			}
		}
	})
	t.Run("ListJSON", func(t *testing.T) {
		code, out, _ := f.qinqing(t, f.cli, "deadletters", "list", "--json", "--status", "pending")
		var l struct{ Items []map[string]any }
		if code != 0 || json.Unmarshal([]byte(out), &l) != nil || len(l.Items) != 2 || l.Items[0]["errorData"] != "boom" {
			t.Fatalf("exit %d:\n%s", code, out)
		}
	})
	t.Run("Replay", func(t *testing.T) {
		// Flags may follow the id; the URL may come from the flag.
		env := map[string]string{"ADMIN_TOKEN": token}
		code, out, errs := f.qinqing(t, env, "deadletters", "replay", ids[0], "--url", f.Fn.URL+"/")
		if code != 0 || !strings.HasPrefix(out, "replayed "+ids[0]+": cn.huzhou.appeal.submitted") || !strings.Contains(out, "status replayed") {
			t.Fatalf("exit %d: %s %s", code, out, errs)
		}
		if got := f.Sink.WaitFor(t, "cn.huzhou.appeal.submitted", 1, 5*time.Second); got[0].Source() != "/portals/enterprise" {
			t.Fatalf("replayed %v", got[0])
		}
		_, out, _ = f.qinqing(t, f.cli, "deadletters", "list", "--status=pending")
		if strings.Contains(out, ids[0]) || !strings.Contains(out, ids[1]) {
			t.Fatalf("pending after replay:\n%s", out)
		}
		_, out, _ = f.qinqing(t, f.cli, "deadletters", "list", "--status", "replayed")
		if !strings.Contains(out, ids[0]) || !strings.Contains(out, "replayed") {
			t.Fatalf("replayed:\n%s", out)
		}
	})
	t.Run("ErrSinkRefuses", func(t *testing.T) {
		f.Sink.SetDown(true)
		defer f.Sink.SetDown(false)
		code, _, errs := f.qinqing(t, f.cli, "deadletters", "replay", ids[1])
		if code != 1 || !strings.Contains(errs, "502") || !strings.Contains(errs, "stays pending") {
			t.Fatalf("exit %d: %s", code, errs)
		}
	})
	t.Run("Errors", func(t *testing.T) {
		cases := []struct {
			name string
			env  map[string]string
			args []string
			code int
			want string
		}{
			{"UnknownID", f.cli, []string{"deadletters", "replay", "00000000-0000-0000-0000-000000000000"}, 1, "no dead letter with id"},
			{"WrongToken", map[string]string{"QINQING_DEADLETTER_URL": f.Fn.URL, "ADMIN_TOKEN": "wrong"}, []string{"deadletters", "list"}, 1, "401"},
			{"NoToken", map[string]string{"QINQING_DEADLETTER_URL": f.Fn.URL}, []string{"deadletters", "list"}, 1, "ADMIN_TOKEN"},
			{"NoURL", map[string]string{"ADMIN_TOKEN": token}, []string{"deadletters", "list"}, 1, "QINQING_DEADLETTER_URL"},
			{"Unreachable", map[string]string{"ADMIN_TOKEN": token}, []string{"deadletters", "list", "--url", fmt.Sprintf("http://127.0.0.1:%d", functest.FreePort(t))}, 1, "connection refused"},
			{"BadStatus", f.cli, []string{"deadletters", "list", "--status", "done"}, 2, "--status must be pending or replayed"},
			{"ReplayWithoutID", f.cli, []string{"deadletters", "replay"}, 2, "exactly one dead letter id"},
			{"UnknownCommand", f.cli, []string{"appeals", "list"}, 2, `unknown command "appeals"`},
			{"UnknownSubcommand", f.cli, []string{"deadletters", "purge"}, 2, `unknown deadletters subcommand "purge"`},
			{"UnknownFlag", f.cli, []string{"deadletters", "list", "--colour"}, 2, "flag provided but not defined"},
			{"NoCommand", f.cli, nil, 2, "no command given"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				code, out, errs := f.qinqing(t, tc.env, tc.args...)
				if code != tc.code || !strings.Contains(errs, tc.want) || out != "" || !strings.HasPrefix(errs, "qinqing: ") {
					t.Fatalf("exit %d, stdout %q, stderr %q; want exit %d with %q", code, out, errs, tc.code, tc.want)
				}
				if strings.Contains(errs, token) {
					t.Fatalf("the error shows the token: %s", errs)
				}
			})
		}
	})
	t.Run("Binary", func(t *testing.T) {
		// The built command: table on stdout, exit 0; a refusal on stderr, exit 1.
		cmd := exec.Command(qinqingBin, "deadletters", "list")
		cmd.Env = []string{"QINQING_DEADLETTER_URL=" + f.Fn.URL, "ADMIN_TOKEN=" + token}
		out, err := cmd.Output()
		if err != nil || !strings.Contains(string(out), ids[1]) {
			t.Fatalf("%v: %s", err, out)
		}
		cmd = exec.Command(qinqingBin, "deadletters", "replay", "nope")
		cmd.Env = []string{"QINQING_DEADLETTER_URL=" + f.Fn.URL, "ADMIN_TOKEN=" + token}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err = cmd.Run()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(stderr.String(), "404") {
			t.Fatalf("%v: %s", err, stderr.String())
		}
	})
}

func TestAdminOff(t *testing.T) {
	t.Parallel()
	f := &fixture{Fixture: functest.Setup(t, deadLetterBin, functest.Parts{Env: []string{"ADMIN_TOKEN="}})}
	code, _, errs := f.qinqing(t, map[string]string{"QINQING_DEADLETTER_URL": f.Fn.URL, "ADMIN_TOKEN": token}, "deadletters", "list")
	if code != 1 || !strings.Contains(errs, "404") || !strings.Contains(errs, "admin endpoints are off") {
		t.Fatalf("exit %d: %s", code, errs)
	}
}

// ids returns the ids of the stored dead letters in the order the admin
// API lists them, asking the function directly; it fails the test unless
// there are two (the parent test stores two).
func (f *fixture) ids(t *testing.T) []string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, f.Fn.URL+"/deadletters", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	r := functest.Do(t, req)
	var l struct {
		Items []struct {
			ID string `json:"id"`
		} `json:"items"`
	}
	if err := json.Unmarshal(r.Body, &l); r.Status != http.StatusOK || err != nil || len(l.Items) != 2 {
		t.Fatalf("GET /deadletters: %d %s (%v), want two items", r.Status, r.Body, err)
	}
	return []string{l.Items[0].ID, l.Items[1].ID}
}
