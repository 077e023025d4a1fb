package postgres_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/qinqing/qinqing/shared/postgres"
	"github.com/qinqing/qinqing/shared/postgres/pgtest"
	"github.com/qinqing/qinqing/shared/runtime/functest"
)

var deadLetterBin string

func TestMain(m *testing.M) {
	functest.Main(m, map[string]*string{"../../functions/dead-letter": &deadLetterBin})
}

func connectAs(t *testing.T, function string) *pgx.Conn {
	t.Helper()
	u, ok := pgtest.FunctionURL(t, pgtest.URL(t), function)
	if !ok {
		t.Fatalf("%s has no group role", function)
	}
	conn, err := pgx.Connect(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func sqlstate(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// TestFunctionRolesLeastPrivilege: forum-signup's role reads and writes
// its own schema and the inbox/outbox, gets "permission denied" (42501)
// on the subsidy ledger and the other domains, and no function role may
// run DDL.
func TestFunctionRolesLeastPrivilege(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	conn := connectAs(t, "forum-signup")
	var who string
	if err := conn.QueryRow(ctx, `SELECT current_user`).Scan(&who); err != nil || who != postgres.LoginRole("forum-signup") {
		t.Fatalf("current_user = %q, %v; want %s", who, err, postgres.LoginRole("forum-signup"))
	}
	for _, ok := range []string{
		`SELECT count(*) FROM forum.forums`,
		`SELECT count(*) FROM forum.signups`,
		`SELECT count(*) FROM qinqing.inbox`,
		`SELECT count(*) FROM qinqing.outbox`,
		`INSERT INTO qinqing.inbox (function, source, id, type) VALUES ('forum-signup', '/t', 'roles-1', 't')`,
		`DELETE FROM qinqing.inbox WHERE id = 'roles-1'`,
	} {
		if _, err := conn.Exec(ctx, ok); err != nil {
			t.Errorf("%s as forum-signup: %v, want allowed", ok, err)
		}
	}
	for _, denied := range []string{
		`SELECT count(*) FROM subsidy.disbursements`,
		`SELECT count(*) FROM subsidy.ledger_lines`,
		`SELECT count(*) FROM subsidy.policy_budgets`,
		`INSERT INTO subsidy.policies (policy_id) VALUES ('x')`,
		`SELECT count(*) FROM appeal.appeals`,
		`SELECT count(*) FROM award.metrics`,
		`SELECT count(*) FROM recycling.trades`,
		`SELECT count(*) FROM deadletter.dead_letters`,
		`DELETE FROM qinqing.calendar_days`,
		`CREATE TABLE forum.extra (id int)`,
		`CREATE TABLE public.extra (id int)`,
		`CREATE SCHEMA extra`,
		`ALTER TABLE forum.signups ADD COLUMN extra int`,
		`DROP TABLE forum.signups`,
		`TRUNCATE qinqing.inbox`,
	} {
		if _, err := conn.Exec(ctx, denied); sqlstate(err) != "42501" {
			t.Errorf("%s as forum-signup: %v, want permission denied (SQLSTATE 42501)", denied, err)
		}
	}

	// deadline-check reads appeals but may not change them.
	dc := connectAs(t, "deadline-check")
	if _, err := dc.Exec(ctx, `SELECT count(*) FROM appeal.appeals`); err != nil {
		t.Errorf("deadline-check reading appeals: %v", err)
	}
	if _, err := dc.Exec(ctx, `UPDATE appeal.appeals SET status = status`); sqlstate(err) != "42501" {
		t.Errorf("deadline-check updating appeals: %v, want SQLSTATE 42501", err)
	}
	// The deadline horizon (migration 0094): deadline-check reads it; its
	// triggers write it as the owner, and no function may write it.
	if _, err := dc.Exec(ctx, `SELECT count(*) FROM qinqing.deadlines`); err != nil {
		t.Errorf("deadline-check reading the deadline horizon: %v", err)
	}
	for _, fn := range []string{"deadline-check", "appeal-router", "subsidy-disbursal"} {
		c := connectAs(t, fn)
		for _, denied := range []string{`DELETE FROM qinqing.deadlines`, `SELECT appeal.rebuild_deadlines()`,
			`INSERT INTO qinqing.deadlines (kind, item) VALUES ('appeal', 'x')`} {
			if _, err := c.Exec(ctx, denied); sqlstate(err) != "42501" {
				t.Errorf("%s as %s: %v, want SQLSTATE 42501", denied, fn, err)
			}
		}
	}
	// open311 reads appeals, their history and escalations, and nothing else.
	o := connectAs(t, "open311")
	for _, ok := range []string{`SELECT count(*) FROM appeal.appeals`, `SELECT count(*) FROM appeal.history`,
		`SELECT count(*) FROM appeal.overdue_announcements`} {
		if _, err := o.Exec(ctx, ok); err != nil {
			t.Errorf("%s as open311: %v, want allowed", ok, err)
		}
	}
	for _, denied := range []string{`UPDATE appeal.appeals SET status = status`, `DELETE FROM appeal.history`,
		`SELECT count(*) FROM appeal.reviews`, `SELECT count(*) FROM forum.signups`, `SELECT count(*) FROM subsidy.disbursements`} {
		if _, err := o.Exec(ctx, denied); sqlstate(err) != "42501" {
			t.Errorf("%s as open311: %v, want permission denied (SQLSTATE 42501)", denied, err)
		}
	}
	// webhook-egress sees only the columns naming a case's origin.
	eg := connectAs(t, "webhook-egress")
	if _, err := eg.Exec(ctx, `SELECT a.source, s.source FROM appeal.appeals a
		LEFT JOIN forum.signups s ON s.signup_id = a.signup_id WHERE a.appeal_id = 'A-1'`); err != nil {
		t.Errorf("webhook-egress reading an appeal's origin: %v", err)
	}
	for _, denied := range []string{`SELECT title FROM appeal.appeals`, `SELECT uscc FROM forum.signups`,
		`SELECT amount_fen FROM subsidy.disbursements`, `SELECT * FROM forum.forums`} {
		if _, err := eg.Exec(ctx, denied); sqlstate(err) != "42501" {
			t.Errorf("%s as webhook-egress: %v, want SQLSTATE 42501", denied, err)
		}
	}
	for _, fn := range postgres.DatabaseFunctions {
		c := connectAs(t, fn)
		if _, err := c.Exec(ctx, `CREATE TABLE qinqing.extra (id int)`); sqlstate(err) != "42501" {
			t.Errorf("DDL as %s: %v, want SQLSTATE 42501", fn, err)
		}
	}
}

// TestFunctionBinariesConnectWithTheirRole: functest starts a function
// with its own login role, so the contract suites prove the grants.
func TestFunctionBinariesConnectWithTheirRole(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.URL(t)
	fn := functest.Start(t, deadLetterBin, "DATABASE_URL="+dbURL)
	ev := functest.Event("cn.huzhou.appeal.submitted", "/portals/enterprise", "roles-dl-1", time.Time{}, map[string]any{"appealId": "A-1"})
	if resp := fn.Send(t, ev); resp.Status != http.StatusAccepted {
		t.Fatalf("dead letter: status %d: %s", resp.Status, resp.Body)
	}
	u, _ := url.Parse(dbURL)
	pool := pgtest.PoolFor(t, dbURL)
	rows, err := pool.Query(context.Background(), `SELECT DISTINCT usename FROM pg_stat_activity
		WHERE datname = $1 AND pid <> pg_backend_pid() AND usename IS NOT NULL`, u.Path[1:])
	if err != nil {
		t.Fatal(err)
	}
	users, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	for _, user := range users {
		if user != postgres.LoginRole("dead-letter") && user != u.User.Username() {
			t.Fatalf("sessions of %v on the database, want only %s (and the test's own owner pool)", users, postgres.LoginRole("dead-letter"))
		}
	}
	found := false
	for _, user := range users {
		found = found || user == postgres.LoginRole("dead-letter")
	}
	if !found {
		t.Fatalf("sessions of %v on the database, want the function's %s", users, postgres.LoginRole("dead-letter"))
	}
}

// TestEnsureLoginRole: the login role is created as a member of the group
// role with a SCRAM verifier (never the clear password), and a rerun with
// another password replaces it.
func TestEnsureLoginRole(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	const fn = "roles-test"
	if _, err := conn.Exec(ctx, `DO $$ BEGIN CREATE ROLE qinqing_roles_test NOLOGIN;
		EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$`); err != nil {
		t.Fatal(err)
	}
	if err := postgres.EnsureLoginRole(ctx, conn, "no-such-function", "pw"); err == nil {
		t.Fatal("a login role for a function without a group role was created")
	}
	verifier := func() string {
		var v string
		var member, login bool
		if err := conn.QueryRow(ctx, `SELECT coalesce(rolpassword, ''), rolcanlogin, pg_has_role($1, $2, 'MEMBER')
			FROM pg_authid WHERE rolname = $1`, postgres.LoginRole(fn), postgres.FunctionRole(fn)).Scan(&v, &login, &member); err != nil {
			t.Fatal(err)
		}
		if !login || !member {
			t.Fatalf("%s: login %v, member of %s %v; want both", postgres.LoginRole(fn), login, postgres.FunctionRole(fn), member)
		}
		return v
	}
	for _, pw := range []string{"first-secret", "second-secret"} {
		if err := postgres.EnsureLoginRole(ctx, conn, fn, pw); err != nil {
			t.Fatal(err)
		}
		v := verifier()
		if !strings.HasPrefix(v, "SCRAM-SHA-256$4096:") || strings.Contains(v, pw) {
			t.Fatalf("stored password %q, want a SCRAM-SHA-256 verifier", v)
		}
	}
	roles, err := postgres.CreateLoginRoles(ctx, pgtest.URL(t), func(string) string { return "" })
	if err != nil || len(roles) != 0 {
		t.Fatalf("CreateLoginRoles without passwords: %v, %v; want nothing done", roles, err)
	}
}
