package deploy

import (
	"slices"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"

	"github.com/qinqing/qinqing/shared/contract"
)

// envOf returns a container's environment by name.
func envOf(c corev1.Container) map[string]corev1.EnvVar {
	out := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		out[e.Name] = e
	}
	return out
}

// secretRef returns "secret/key" of a variable read from a Secret, or "".
func secretRef(e corev1.EnvVar) string {
	if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
		return ""
	}
	return e.ValueFrom.SecretKeyRef.Name + "/" + e.ValueFrom.SecretKeyRef.Key
}

// TestDatabaseEnv checks the database environment of every function and of
// the migration Job: the pooler mode, the URLs from each function's own
// Secret or the shared one, the listen URL, the timeouts, the migrations'
// direct URL around the pooler, and the login passwords cmd/migrate
// -create-login-roles reads.
func TestDatabaseEnv(t *testing.T) {
	t.Parallel()
	c := loadChart(t)
	passwords := map[string]string{"DATABASE_URL": "qinqing-database/url", "DATABASE_POOLER": "none"}
	for _, s := range contract.Catalog {
		if s.Function != "webhook-ingress" {
			passwords["DATABASE_PASSWORD_"+strings.ToUpper(strings.ReplaceAll(s.Function, "-", "_"))] = "qinqing-db-passwords/" + s.Function
		}
	}
	for _, tc := range []struct {
		name, values string
		pooler       string
		secret       map[string]string // function → its Secret; others qinqing-database
		listen       string            // key of DATABASE_LISTEN_URL, "" for none
		migrate      map[string]string // variable of the Job → secret/key or value
		args         []string          // of the Job
		timeouts     map[string]map[string]string
	}{{
		name:    "Defaults",
		pooler:  "none",
		migrate: map[string]string{"DATABASE_URL": "qinqing-database/url", "DATABASE_POOLER": "none"},
		timeouts: map[string]map[string]string{
			"forum-signup":    {"REQUEST_TIMEOUT": "55s", "BODY_READ_TIMEOUT": "15s", "DATABASE_CONNECT_TIMEOUT": "5s", "DATABASE_STATEMENT_TIMEOUT": "30s", "DATABASE_LOCK_TIMEOUT": "10s"},
			"recycling-trade": {"REQUEST_TIMEOUT": "540s", "DATABASE_STATEMENT_TIMEOUT": "300s"},
			"webhook-ingress": {"REQUEST_TIMEOUT": "55s", "BODY_READ_TIMEOUT": "15s"},
		},
	}, {
		name: "PgBouncerWithRolesPerFunction",
		values: `
database:
  pooler: pgbouncer-transaction
  listenUrlKey: listen-url
  pgbouncer: {serverConnections: 20}
functions:
  forum-signup: {databaseSecret: qinqing-db-forum-signup, databaseLockTimeout: 2s}
  dead-letter: {databaseSecret: qinqing-db-dead-letter, requestTimeout: 20s}
migrations:
  existingSecret: qinqing-owner
  urlKey: owner-url
`,
		pooler:  "pgbouncer-transaction",
		secret:  map[string]string{"forum-signup": "qinqing-db-forum-signup", "dead-letter": "qinqing-db-dead-letter"},
		listen:  "listen-url",
		migrate: map[string]string{"MIGRATIONS_DATABASE_URL": "qinqing-owner/owner-url"},
		timeouts: map[string]map[string]string{
			"forum-signup": {"DATABASE_LOCK_TIMEOUT": "2s", "DATABASE_STATEMENT_TIMEOUT": "30s"},
			"dead-letter":  {"REQUEST_TIMEOUT": "20s"},
		},
	}, {
		name:    "LoginRolesByMigrate",
		values:  "migrations: {loginRoles: {existingSecret: qinqing-db-passwords}}",
		pooler:  "none",
		migrate: passwords,
		args:    []string{"-create-login-roles"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := mustRender(t, c, withKo(parseValues(t, tc.values)))
			objs, errs := decodeAll(r.Objects)
			if len(errs) > 0 {
				t.Fatal(errs)
			}
			for _, s := range objectsOf[*servingv1.Service](objs) {
				fn := s.Labels["app.kubernetes.io/component"]
				env := envOf(s.Spec.Template.Spec.Containers[0])
				for name, want := range tc.timeouts[fn] {
					if got := env[name].Value; got != want {
						t.Errorf("%s: %s=%q, want %q", fn, name, got, want)
					}
				}
				if fn == "webhook-ingress" {
					for _, name := range []string{"DATABASE_URL", "DATABASE_LISTEN_URL", "DATABASE_POOLER"} {
						if _, ok := env[name]; ok {
							t.Errorf("webhook-ingress (no database) has %s", name)
						}
					}
					continue
				}
				secret := tc.secret[fn]
				if secret == "" {
					secret = "qinqing-database"
				}
				if got := secretRef(env["DATABASE_URL"]); got != secret+"/url" {
					t.Errorf("%s: DATABASE_URL from %q, want %s/url", fn, got, secret)
				}
				if got := env["DATABASE_POOLER"].Value; got != tc.pooler {
					t.Errorf("%s: DATABASE_POOLER=%q, want %q", fn, got, tc.pooler)
				}
				listen, ok := env["DATABASE_LISTEN_URL"]
				switch {
				case tc.listen == "" && ok:
					t.Errorf("%s: DATABASE_LISTEN_URL without database.listenUrlKey", fn)
				case tc.listen != "" && secretRef(listen) != secret+"/"+tc.listen:
					t.Errorf("%s: DATABASE_LISTEN_URL from %q, want %s/%s", fn, secretRef(listen), secret, tc.listen)
				}
			}
			jobs := objectsOf[*batchv1.Job](objs)
			if len(jobs) != 1 {
				t.Fatalf("%d Jobs, want the migration Job", len(jobs))
			}
			job := jobs[0].Spec.Template.Spec.Containers[0]
			if !slices.Equal(job.Args, tc.args) {
				t.Errorf("migration Job args %q, want %q", job.Args, tc.args)
			}
			for _, e := range job.Env {
				if strings.HasPrefix(e.Name, "DATABASE_PASSWORD_") && (e.ValueFrom.SecretKeyRef.Optional == nil || !*e.ValueFrom.SecretKeyRef.Optional) {
					t.Errorf("migration Job: %s is not optional; a function without a password would stop the Job", e.Name)
				}
			}
			env := envOf(job)
			if len(env) != len(tc.migrate) {
				t.Errorf("migration Job env %v, want exactly %v", sortedKeys(env), tc.migrate)
			}
			for name, want := range tc.migrate {
				got := secretRef(env[name])
				if got == "" {
					got = env[name].Value
				}
				if got != want {
					t.Errorf("migration Job: %s = %q, want %q", name, got, want)
				}
			}
		})
	}
}
