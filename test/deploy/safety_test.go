package deploy

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/chart"
)

// TestNoImageNoInstall proves that `helm install` without an image
// registry stops at template time with one line naming image.registry,
// instead of installing a migration Job that waits for an image that does
// not exist.
func TestNoImageNoInstall(t *testing.T) {
	t.Parallel()
	c := loadChart(t)
	for _, tc := range []struct{ name, values string }{
		{"Defaults", ""},
		{"OneFunctionSet", "functions: {forum-signup: {image: {repository: r.example/fs, tag: '1'}}}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := render(c, parseValues(t, tc.values))
			if err == nil {
				t.Fatal("rendered without image.registry or image.ko")
			}
			msg := err.Error()
			if strings.Count(msg, "\n") != 0 || !strings.Contains(msg, "image.registry:") || !strings.Contains(msg, "image.ko=true") {
				t.Errorf("want one line naming image.registry and image.ko, got:\n%s", msg)
			}
		})
	}
}

// knativeRefusal is a value Helm must refuse, together with the same value
// written into a rendered object by hand, which Knative must refuse: so
// the schema and validateValues are no stricter than Knative by mistake.
type knativeRefusal struct {
	name    string
	values  string   // values Helm refuses
	helm    []string // in Helm's error
	kind    string   // the rendered object to change
	old     string   // text of the valid rendering
	new     string   // the refused value in the object
	knative string   // in Knative's error
}

var knativeRefusals = []knativeRefusal{{
	name:    "TimezoneNotIANA",
	values:  "timezone: Mars/Olympus\n",
	helm:    []string{"/timezone", "does not match pattern"},
	kind:    "PingSource",
	old:     `timezone: "Asia/Shanghai"`,
	new:     `timezone: "Mars/Olympus"`,
	knative: "timezone",
}, {
	name:    "CronWords",
	values:  "cron:\n  forum-weekly:\n    schedule: every day\n",
	helm:    []string{"/cron/forum-weekly/schedule", "does not match pattern"},
	kind:    "PingSource",
	old:     `schedule: "0 * * * *"`,
	new:     `schedule: "every day"`,
	knative: "schedule",
}, {
	name:    "CronMinute61",
	values:  "cron:\n  forum-weekly:\n    schedule: 61 * * * *\n",
	helm:    []string{"VALUES VALIDATION", `cron.forum-weekly.schedule: "61 * * * *" has minute "61"; use numbers in 0-59`},
	kind:    "PingSource",
	old:     `schedule: "0 * * * *"`,
	new:     `schedule: "61 * * * *"`,
	knative: "schedule",
}, {
	name:    "CronDay32",
	values:  "cron:\n  monthly-review:\n    schedule: 0 6 32 * *\n",
	helm:    []string{"VALUES VALIDATION", `cron.monthly-review.schedule: "0 6 32 * *" has day of month "32"; use numbers in 1-31`},
	kind:    "PingSource",
	old:     `schedule: "0 6 1 * *"`,
	new:     `schedule: "0 6 32 * *"`,
	knative: "schedule",
}, {
	name:    "CronBackwardRange",
	values:  "cron:\n  deadline-check:\n    schedule: 30 8 * * 5-1\n",
	helm:    []string{"VALUES VALIDATION", "cron.deadline-check.schedule: the range 5-1 runs backwards"},
	kind:    "PingSource",
	old:     `schedule: "30 8 * * *"`,
	new:     `schedule: "30 8 * * 5-1"`,
	knative: "schedule",
}, {
	name:    "TimeoutSecondsAbove600",
	values:  "functionDefaults:\n  timeoutSeconds: 100000\n",
	helm:    []string{"/functionDefaults/timeoutSeconds", "600"},
	kind:    "Service",
	old:     "timeoutSeconds: 300",
	new:     "timeoutSeconds: 100000",
	knative: "timeoutSeconds",
}, {
	name:    "ScaleDownDelay2h",
	values:  "functions:\n  forum-signup:\n    scaleDownDelay: 2h\n",
	helm:    []string{"VALUES VALIDATION", "functions.forum-signup.scaleDownDelay: 2h is more than 1h"},
	kind:    "Service",
	old:     `autoscaling.knative.dev/scale-down-delay: "0s"`,
	new:     `autoscaling.knative.dev/scale-down-delay: "2h"`,
	knative: "scale-down-delay",
}, {
	name:    "ScaleDownDelay61m",
	values:  "functions:\n  forum-signup:\n    scaleDownDelay: 1h1m\n",
	helm:    []string{"VALUES VALIDATION", "functions.forum-signup.scaleDownDelay: 1h1m is more than 1h"},
	kind:    "Service",
	old:     `autoscaling.knative.dev/scale-down-delay: "0s"`,
	new:     `autoscaling.knative.dev/scale-down-delay: "1h1m"`,
	knative: "scale-down-delay",
}, {
	name:    "ScaleDownDelay500ms",
	values:  "functions:\n  forum-signup:\n    scaleDownDelay: 500ms\n",
	helm:    []string{"/functions/forum-signup/scaleDownDelay", "does not match pattern"},
	kind:    "Service",
	old:     `autoscaling.knative.dev/scale-down-delay: "0s"`,
	new:     `autoscaling.knative.dev/scale-down-delay: "500ms"`,
	knative: "second precision",
}, {
	name:    "MinScaleAboveMaxScale",
	values:  "functions:\n  appeal-router:\n    minScale: 5\n",
	helm:    []string{"VALUES VALIDATION", "functions.appeal-router: minScale 5 is above maxScale 3"},
	kind:    "Service",
	old:     `autoscaling.knative.dev/min-scale: "0"`,
	new:     `autoscaling.knative.dev/min-scale: "5"`,
	knative: "max-scale=3 is less than min-scale=5",
}}

// TestRefusedValuesKnativeRefusesToo checks each value the chart refuses
// for Knative's sake twice: Helm refuses it with a readable error, and
// Knative's own validation refuses it in the object it would have reached.
func TestRefusedValuesKnativeRefusesToo(t *testing.T) {
	t.Parallel()
	c := loadChart(t)
	valid := mustRender(t, c, koValues())
	for _, tc := range knativeRefusals {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := render(c, withKo(parseValues(t, tc.values)))
			if err == nil {
				t.Errorf("Helm renders %q", tc.values)
			} else {
				for _, w := range tc.helm {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("Helm's error does not mention %q:\n%v", w, err)
					}
				}
			}
			kerr := tamperedError(t, valid, tc.kind, tc.old, tc.new)
			if kerr == nil {
				t.Fatalf("Knative accepts %s with %s: the chart is stricter than Knative", tc.kind, tc.new)
			}
			if !isValidationError(kerr) || !strings.Contains(kerr.Error(), tc.knative) {
				t.Errorf("Knative's error does not mention %q: %v", tc.knative, kerr)
			}
		})
	}
}

// tamperedError replaces old by new in the first rendered object of kind
// that contains old and returns what decoding and Knative's validation say.
func tamperedError(t *testing.T, r rendered, kind, old, new string) error {
	t.Helper()
	for _, m := range r.find(kind) {
		if !bytes.Contains(m.YAML, []byte(old)) {
			continue
		}
		m.YAML = bytes.Replace(m.YAML, []byte(old), []byte(new), 1)
		_, err := decode(knativeContext(), m)
		return err
	}
	t.Fatalf("no %s contains %q", kind, old)
	return nil
}

// TestCronSchedulesAgreeWithKnative runs schedules through the chart (the
// schema and validateValues) and through Knative's PingSource validation.
// Where they differ, the chart is deliberately stricter: it admits only
// five numeric fields (no descriptors, no seconds field, no names), as
// values.yaml documents.
func TestCronSchedulesAgreeWithKnative(t *testing.T) {
	t.Parallel()
	c := loadChart(t)
	valid := mustRender(t, c, koValues())
	deliberate := map[string]string{
		"@daily":      "descriptor",
		"@hourly":     "descriptor",
		"0 0 0 * * *": "six fields (seconds)",
		"0 9 * * MON": "day name",
		"0 9 1 JAN *": "month name",
		"0 9 ? * 1":   "question mark",
		"":            "empty (Knative admits it)",
	}
	for _, schedule := range []string{
		// admitted by both
		"0 * * * *", "*/15 * * * *", "0 9 * * 1-5", "0,30 8-18 * * *", "5/10 * * * *",
		"0 0 1 1 0", "59 23 31 12 6", "00 08 * * *", "0 0 1-31/2 * *", "0-59/5 0-23 1-31 1-12 0-6",
		// refused by both
		"every day", "61 * * * *", "0 24 * * *", "0 0 0 * *", "0 0 * 13 *", "0 0 * * 7",
		"* * * *", "0 0 * * * * *", "*/0 * * * *", "5-1 * * * *", "@every 1h", "0 0 * * -1",
		// refused by the chart only
		"@daily", "@hourly", "0 0 0 * * *", "0 9 * * MON", "0 9 1 JAN *", "0 9 ? * 1", "",
	} {
		t.Run(strings.NewReplacer(" ", "_", "/", "÷", "*", "x").Replace(schedule), func(t *testing.T) {
			t.Parallel()
			v := map[string]any{"cron": map[string]any{"forum-weekly": map[string]any{"schedule": schedule}}}
			_, herr := render(c, withKo(v))
			kerr := tamperedError(t, valid, "PingSource", `schedule: "0 * * * *"`, "schedule: "+quoteJSON(schedule))
			helmOK, knativeOK := herr == nil, kerr == nil
			why, stricter := deliberate[schedule]
			switch {
			case helmOK && !knativeOK:
				t.Errorf("the chart admits %q, Knative refuses it: %v", schedule, kerr)
			case !helmOK && knativeOK && !stricter:
				t.Errorf("the chart refuses %q, which Knative admits: %v", schedule, herr)
			case helmOK && stricter:
				t.Errorf("the chart admits %q, listed as deliberately refused (%s)", schedule, why)
			}
		})
	}
}

func quoteJSON(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// schemaPattern returns the pattern values.schema.json gives a property,
// compiled as Helm's JSON schema validator compiles it (Go's regexp).
func schemaPattern(t *testing.T, c *chart.Chart, path ...string) *regexp.Regexp {
	t.Helper()
	var cur any
	if err := json.Unmarshal(c.Schema, &cur); err != nil {
		t.Fatal(err)
	}
	for _, p := range path {
		m, _ := cur.(map[string]any)
		cur = m[p]
	}
	s, ok := cur.(string)
	if !ok {
		t.Fatalf("values.schema.json has no pattern at %v", path)
	}
	return regexp.MustCompile(s)
}

// TestTimezonePatternAdmitsIANAZones checks the time zone pattern of the
// schema against Go's copy of the IANA database: every zone under an IANA
// area (Africa … Pacific, Etc) and UTC is admitted and loads, so the
// pattern refuses only names that are not IANA-shaped (Mars/Olympus) or
// are backward-compatible aliases outside the areas (PRC, Japan), which
// values.yaml asks to write as Asia/Shanghai, Asia/Tokyo.
func TestTimezonePatternAdmitsIANAZones(t *testing.T) {
	t.Parallel()
	c := loadChart(t)
	tz := schemaPattern(t, c, "properties", "timezone", "pattern")
	zones := goZones(t)
	area := regexp.MustCompile(`^(Africa|America|Antarctica|Arctic|Asia|Atlantic|Australia|Europe|Indian|Pacific|Etc)/`)
	checked := 0
	for _, z := range zones {
		if !area.MatchString(z) && z != "UTC" {
			continue
		}
		checked++
		if !tz.MatchString(z) {
			t.Errorf("the schema refuses the IANA zone %s", z)
		}
		if _, err := time.LoadLocation(z); err != nil {
			t.Errorf("%s: %v", z, err)
		}
	}
	if checked < 300 {
		t.Fatalf("only %d zones under the IANA areas in Go's zoneinfo.zip", checked)
	}
	for _, bad := range []string{"Mars/Olympus", "asia/shanghai", "Shanghai", "Asia/", "Asia/Shanghai/", "+08:00", "Local", ""} {
		if tz.MatchString(bad) {
			t.Errorf("the schema admits %q", bad)
		}
	}
}

// goZones lists the zone names of Go's zoneinfo.zip.
func goZones(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Skipf("go env GOROOT: %v", err)
	}
	path := filepath.Join(strings.TrimSpace(string(out)), "lib", "time", "zoneinfo.zip")
	if _, err := os.Stat(path); err != nil {
		t.Skipf("no %s", path)
	}
	z, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer z.Close()
	var names []string
	for _, f := range z.File {
		if !strings.HasSuffix(f.Name, "/") {
			names = append(names, f.Name)
		}
	}
	return names
}
