package deploy

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/qinqing/qinqing/shared/contract"
)

// TestRejectsBadValues proves that a bad values file never reaches a
// cluster: the schema, validateValues or Knative's validation stops it.
func TestRejectsBadValues(t *testing.T) {
	t.Parallel()
	c := loadChart(t)
	for _, tc := range []struct {
		name   string
		values string
		want   []string // all in the error
		knativ bool     // rejected by Knative's validation, not by Helm
	}{{
		name:   "SchemaTypoInFunctionKey",
		values: "functions:\n  forum-signup:\n    maxScael: 3\n",
		want:   []string{"maxScael"},
	}, {
		name:   "SchemaUnknownFunction",
		values: "functions:\n  forum-sigup: {}\n",
		want:   []string{"forum-sigup"},
	}, {
		name:   "SchemaTopLevelTypo",
		values: "timezon: Asia/Shanghai\n",
		want:   []string{"timezon"},
	}, {
		name:   "SchemaMaxScaleNotANumber",
		values: "functionDefaults:\n  maxScale: ten\n",
		want:   []string{"maxScale"},
	}, {
		name:   "SchemaUnknownCounty",
		values: "appealRouter:\n  routingRules:\n    defaultDepartment: yingshang-office\n    rules:\n      - category: land\n        department: natural-resources\n        counties:\n          hangzhou: x\n",
		want:   []string{"hangzhou"},
	}, {
		name:   "SchemaPolicyWithAmountAndRate",
		values: "subsidyDisbursal:\n  policies:\n    - {policyId: p, name: 'Policy P', trigger: cn.huzhou.subsidy.requested, amountFen: 1, rateBasisPoints: 5, capFen: 9, budgetFen: 100}\n",
		want:   []string{"/subsidyDisbursal/policies/0", "'not' failed"},
	}, {
		// subsidy-disbursal refuses these at start; the schema refuses them first.
		name:   "SchemaPolicyZeroCap",
		values: "subsidyDisbursal:\n  policies:\n    - {policyId: p, name: 'Policy P', trigger: cn.huzhou.subsidy.requested, capFen: 0, budgetFen: 100}\n",
		want:   []string{"/subsidyDisbursal/policies/0/capFen"},
	}, {
		name:   "SchemaPolicyBooleanMatch",
		values: "subsidyDisbursal:\n  policies:\n    - {policyId: p, name: 'Policy P', trigger: cn.huzhou.honour.awarded, match: {honour: true}, amountFen: 1, budgetFen: 100}\n",
		want:   []string{"/subsidyDisbursal/policies/0/match/honour"},
	}, {
		name:   "SchemaPolicyRateWithoutCap",
		values: "subsidyDisbursal:\n  policies:\n    - {policyId: p, name: 'Policy P', trigger: cn.huzhou.project.milestone.approved, rateBasisPoints: 100, budgetFen: 100}\n",
		want:   []string{"/subsidyDisbursal/policies/0", "capFen"},
	}, {
		name:   "SchemaPortalSecretWithoutPrefix",
		values: "webhookIngress:\n  portals:\n    p:\n      secrets: [abc]\n      allowedTypes: [cn.huzhou.appeal.submitted]\n",
		want:   []string{"whsec_"},
	}, {
		name:   "ValidateMissingDatabaseSecret",
		values: "database:\n  existingSecret: \"\"\n",
		want:   []string{"VALUES VALIDATION", "database.existingSecret"},
	}, {
		name:   "ValidateMinAboveMax",
		values: "functions:\n  deadline-check:\n    minScale: 5\n    maxScale: 2\n",
		want:   []string{"VALUES VALIDATION", "functions.deadline-check: minScale 5 is above maxScale 2"},
	}, {
		name:   "ValidateConnectionBudget",
		values: "functionDefaults:\n  maxScale: 20\n",
		want:   []string{"VALUES VALIDATION", "database.maxConnections", "486 connections to Postgres (484 pooled and LISTEN, 0 direct LISTEN, 2 migrations"},
	}, {
		name:   "ValidateUnboundedDatabaseFunction",
		values: "functions:\n  appeal-router:\n    maxScale: 0\n",
		want:   []string{"VALUES VALIDATION", "appeal-router use the database and may scale without limit"},
	}, {
		name:   "ValidateConcurrencyAbovePool",
		values: "functions:\n  forum-signup:\n    containerConcurrency: 10\n",
		want:   []string{"VALUES VALIDATION", "functions.forum-signup.containerConcurrency: 10 admits 10 requests at once, but its pool has 2 connections"},
	}, {
		name:   "ValidateUnlimitedConcurrency",
		values: "functionDefaults:\n  containerConcurrency: 0\n",
		want:   []string{"VALUES VALIDATION", "functions.dead-letter.containerConcurrency: 0 admits any number of requests at once"},
	}, {
		name:   "ValidateTargetAboveConcurrency",
		values: "functions:\n  appeal-router:\n    target: 10\n",
		want:   []string{"VALUES VALIDATION", "functions.appeal-router.target: 10 is above containerConcurrency 2"},
	}, {
		name:   "SchemaConcurrencyWord",
		values: "functionDefaults:\n  containerConcurrency: many\n",
		want:   []string{"/functionDefaults/containerConcurrency"},
	}, {
		name:   "ValidateRequestTimeoutNotShorter",
		values: "functions:\n  forum-signup:\n    requestTimeout: 5m\n",
		want:   []string{"VALUES VALIDATION", "functions.forum-signup.requestTimeout: 5m is not shorter than timeoutSeconds 300"},
	}, {
		name:   "SchemaTimeoutNotADuration",
		values: "functionDefaults:\n  databaseLockTimeout: soon\n",
		want:   []string{"/functionDefaults/databaseLockTimeout"},
	}, {
		name:   "SchemaUnknownPooler",
		values: "database:\n  pooler: pgpool\n",
		want:   []string{"/database/pooler"},
	}, {
		name:   "ValidatePoolerWithoutServerConnections",
		values: "database:\n  pooler: pgbouncer-transaction\n",
		want:   []string{"VALUES VALIDATION", "database.pgbouncer.serverConnections: with database.pooler=pgbouncer-transaction"},
	}, {
		// What goes around the pooler counts against Postgres: the
		// relays' direct LISTEN and the migrations' direct URL.
		name:   "ValidatePoolerDirectBudget",
		values: "database:\n  pooler: pgbouncer-transaction\n  listenUrlKey: listen-url\n  pgbouncer: {serverConnections: 90}\nmigrations:\n  urlKey: owner-url\n",
		want:   []string{"VALUES VALIDATION", "Postgres would see 118 connections (90 PgBouncer server connections, 26 direct LISTEN, 2 migrations around the pooler), more than the 97"},
	}, {
		// In session mode each relay's LISTEN holds a client connection.
		name:   "ValidatePoolerSessionClientBudget",
		values: "database:\n  pooler: pgbouncer-session\n  pgbouncer: {serverConnections: 50, maxClientConnections: 50}\n",
		want:   []string{"VALUES VALIDATION", "78 client connections to PgBouncer (76 pooled and LISTEN, 2 migrations), more than its 50"},
	}, {
		// In transaction mode without a listen URL the relays poll.
		name:   "ValidatePoolerTransactionClientBudget",
		values: "database:\n  pooler: pgbouncer-transaction\n  pgbouncer: {serverConnections: 10, maxClientConnections: 51}\n",
		want:   []string{"VALUES VALIDATION", "52 client connections to PgBouncer (50 pooled and LISTEN, 2 migrations), more than its 51"},
	}, {
		name:   "ValidateDatabaseSecretWithoutDatabase",
		values: "functions:\n  webhook-ingress:\n    databaseSecret: qinqing-db-webhook\n",
		want:   []string{"VALUES VALIDATION", "functions.webhook-ingress.databaseSecret: webhook-ingress does not use the database"},
	}, {
		name:   "ValidateOwnAnnotationsOnSharedAccount",
		values: "serviceAccount:\n  perFunction: false\nfunctions:\n  forum-signup:\n    serviceAccountAnnotations: {a: b}\n",
		want:   []string{"VALUES VALIDATION", "functions.forum-signup.serviceAccountAnnotations: only applied to a ServiceAccount of its own"},
	}, {
		name:   "SchemaAdminFromNotAPeer",
		values: "networkPolicy:\n  adminFrom:\n    - namespace: ops\n",
		want:   []string{"/networkPolicy/adminFrom/0"},
	}, {
		name:   "ValidatePolicyTriggerNotConsumed",
		values: "subsidyDisbursal:\n  policies:\n    - {policyId: p, name: 'Policy P', trigger: cn.huzhou.forum.scheduled, amountFen: 1, budgetFen: 100}\n",
		want:   []string{"VALUES VALIDATION", "subsidyDisbursal.policies[0].trigger", "cn.huzhou.forum.scheduled"},
	}, {
		name:   "ValidatePortalTypeNotConsumed",
		values: "webhookIngress:\n  portals:\n    p:\n      secrets: [whsec_YWJj]\n      allowedTypes: [cn.huzhou.appeal.assigned]\n",
		want:   []string{"VALUES VALIDATION", "cn.huzhou.appeal.assigned"},
	}, {
		name:   "ValidateSinkWithoutURL",
		values: "broker:\n  sinkBinding: false\n",
		want:   []string{"VALUES VALIDATION", "broker.url"},
	}, {
		// Passes the schema and Knative's own check, which is not what a
		// Helm user would guess: Knative looks the name up in its zone
		// database, the schema only knows its shape (docs/deploy.md).
		name:   "KnativeUnknownTimezone",
		values: "timezone: Asia/Huzhou\n",
		want:   []string{"PingSource", "timezone"},
		knativ: true,
	}, {
		name:   "KnativeBadBackoffDelay",
		values: "functions:\n  appeal-router:\n    delivery:\n      backoffDelay: PT1X\n",
		want:   []string{"backoffDelay"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r, err := render(c, withKo(parseValues(t, tc.values)))
			if err == nil {
				var errs []error
				_, errs = decodeAll(r.Objects)
				if len(errs) > 0 {
					err = errs[0]
					if !tc.knativ || !isValidationError(err) {
						t.Errorf("rejected by Knative validation, want Helm to reject it first: %v", err)
					}
				}
			} else if tc.knativ {
				t.Errorf("rejected by Helm, want it to reach Knative's validation: %v", err)
			}
			if err == nil {
				t.Fatalf("values accepted:\n%s", tc.values)
			}
			t.Log(err)
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q:\n%v", w, err)
				}
			}
		})
	}
}

// TestKnativeRejectsTamperedObjects proves the Knative validation step is
// live: a rendered Service or Trigger changed by hand is rejected.
func TestKnativeRejectsTamperedObjects(t *testing.T) {
	t.Parallel()
	r := mustRender(t, loadChart(t), koValues())
	for _, tc := range []struct {
		name, kind, old, new, want string
	}{
		{"MaxScaleNotANumber", "Service", `autoscaling.knative.dev/max-scale: "3"`, `autoscaling.knative.dev/max-scale: "ten"`, "max-scale"},
		{"NegativeRetry", "Trigger", "retry: 8", "retry: -1", "retry"},
		{"UnknownBackoffPolicy", "Trigger", "backoffPolicy: exponential", "backoffPolicy: fibonacci", "backoffPolicy"},
		{"MisspelledField", "Trigger", "deadLetterSink:", "deadLetterSnk:", "deadLetterSnk"},
		{"TimeoutAboveMaximum", "Service", "timeoutSeconds: 300", "timeoutSeconds: 3600", "timeoutSeconds"},
		{"PrivilegedContainer", "Service", "allowPrivilegeEscalation: false", "privileged: true", "privileged"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := r.find(tc.kind)[0]
			if !bytes.Contains(m.YAML, []byte(tc.old)) {
				t.Fatalf("%s does not contain %q", m, tc.old)
			}
			m.YAML = bytes.Replace(m.YAML, []byte(tc.old), []byte(tc.new), 1)
			_, err := decode(knativeContext(), m)
			if err == nil {
				t.Fatalf("tampered %s accepted", m)
			}
			t.Log(err)
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error does not mention %q: %v", tc.want, err)
			}
		})
	}
}

// TestInvariantsCatchCatalogDrift proves that the chart and contract.Catalog
// cannot drift apart silently: against a changed catalogue, the rendered
// chart fails the invariants.
func TestInvariantsCatchCatalogDrift(t *testing.T) {
	t.Parallel()
	r := mustRender(t, loadChart(t), koValues())
	objs, errs := decodeAll(r.Objects)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	clone := func() []contract.Subscription {
		out := make([]contract.Subscription, len(contract.Catalog))
		for i, s := range contract.Catalog {
			out[i] = contract.Subscription{Function: s.Function, Types: slices.Clone(s.Types), Jobs: slices.Clone(s.Jobs)}
		}
		return out
	}
	for _, tc := range []struct {
		name   string
		change func([]contract.Subscription) []contract.Subscription
		want   string
	}{{
		name: "NewType",
		change: func(c []contract.Subscription) []contract.Subscription {
			c[0].Types = append(c[0].Types, "cn.huzhou.forum.rescheduled")
			return c
		},
		want: "forum-signup cn.huzhou.forum.rescheduled: 0 Triggers, want exactly 1",
	}, {
		name: "DroppedType",
		change: func(c []contract.Subscription) []contract.Subscription {
			c[1].Types = c[1].Types[1:]
			return c
		},
		want: "appeal-router cn.huzhou.calendar.published: a Trigger that contract.Catalog does not ask for",
	}, {
		name: "MovedJob",
		change: func(c []contract.Subscription) []contract.Subscription {
			c[2].Jobs = []string{"deadline-check"}
			c[3].Jobs = []string{"monthly-review"}
			return c
		},
		want: "subsidy-disbursal job:monthly-review: 0 Triggers, want exactly 1",
	}, {
		name: "NewFunction",
		change: func(c []contract.Subscription) []contract.Subscription {
			return append(c, contract.Subscription{Function: "tax-refund", Types: []string{"cn.huzhou.tax.refund.requested"}})
		},
		want: "function tax-refund has no Knative Service",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			problems := checkInvariants(r.Objects, objs, tc.change(clone()), expectations{Timezone: "Asia/Shanghai"})
			if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, tc.want) }) {
				t.Errorf("problems %q do not include %q", problems, tc.want)
			}
		})
	}
}
