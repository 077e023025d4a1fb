package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/qinqing/qinqing/shared/contract"
	"github.com/qinqing/qinqing/shared/runtime/functest"
	"github.com/qinqing/qinqing/shared/testkit"
)

var update = flag.Bool("update", false, "rewrite testdata/golden from the current renderer")

// hostile are texts a portal may send that mean something in HTML, or
// are not valid text at all.
var hostile = []string{
	`<script>alert("x")</script>`,
	`dept"><img src=x onerror=alert(1)>`,
	`'single' & "double" + more`,
	"nul\x00byte",
	"bad utf-8 \xff\xfe end",
	"&amp; &#60; &lt;",
	"{{.Title}} \u2028 \ufffd \ufdd0",
}

// goldenReviews cover every branch of the page: categories, departments
// with and without revisits, known and unknown channels and counties,
// a period that is not a month, and a month with no appeals at all.
func goldenReviews() map[string]Review {
	h := hostile
	from := time.Date(2030, 5, 1, 0, 0, 0, 0, testkit.Shanghai)
	to := from.AddDate(0, 1, 0)
	asOf := time.Date(2030, 6, 1, 2, 0, 0, 0, testkit.Shanghai)
	full := Review{Period: "2030-05", From: from, To: to, AsOf: asOf, Received: 12,
		Assign: StageFigures{OnTime: 9, Late: 2, Pending: 1}, Reply: StageFigures{OnTime: 7, Late: 3, Pending: 2},
		Replied: 10, Revisited: 6, Revisits: RevisitFigures{Total: 7, Satisfied: 4, BasicallySatisfied: 2, Unsatisfied: 1},
		AssignedOnTimeRate: 9.0 / 11, RepliedOnTimeRate: 0.7, RevisitRate: 0.6, SatisfactionRate: 6.0 / 7,
		TopCategories: []contract.CategoryCount{{Category: "finance", Count: 5}, {Category: h[0], Count: 3}, {Category: h[2], Count: 2},
			{Category: "", Count: 1}, {Category: h[3], Count: 1}},
		Departments: []DepartmentFigures{
			{Department: "city-economy", Received: 6, OnTime: 4, Overdue: 1, Pending: 1, Revisits: 4, Satisfied: 3, SatisfactionRate: 0.75},
			{Department: h[1], Received: 4, OnTime: 3, Overdue: 1, Revisits: 3, Satisfied: 3, SatisfactionRate: 1},
			{Department: h[4], Received: 2, Overdue: 1, Pending: 1},
		},
		Channels: []NamedCount{{Name: "portal", Count: 8}, {Name: h[5], Count: 4}},
		Counties: []NamedCount{{Name: "wuxing", Count: 7}, {Name: h[6], Count: 5}},
	}
	odd := full
	odd.Period = h[0]
	return map[string]Review{
		"full":  full,
		"odd":   odd,
		"empty": {Period: "2030-02", From: from.AddDate(0, -3, 0), To: from.AddDate(0, -2, 0), AsOf: asOf},
	}
}

// TestRenderGolden compares the page with the bytes in testdata/golden
// (first written by the html/template renderer this writer replaced, so
// the page did not change); go test -update rewrites them after a
// deliberate change to the page.
func TestRenderGolden(t *testing.T) {
	t.Parallel()
	for name, rv := range goldenReviews() {
		page, err := RenderHTML(rv)
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join("testdata", "golden", name+".html")
		if *update {
			if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(file, page, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(page, want) {
			t.Errorf("%s: the page differs from %s:\n%s", name, file, page)
		}
	}
}

// TestRenderEscapesHostileText shows that no text of the review reaches
// the page as markup: every <, >, &, quote and + comes out as an entity
// and U+0000 as U+FFFD, in <title>, element text and SVG text alike.
func TestRenderEscapesHostileText(t *testing.T) {
	t.Parallel()
	page, err := RenderHTML(goldenReviews()["odd"])
	if err != nil {
		t.Fatal(err)
	}
	s := string(page)
	for _, bad := range []string{"<script", "<img", "\x00", "'single'", `"double"`, "&amp; &#60;", "+ more"} {
		if strings.Contains(s, bad) {
			t.Errorf("page contains %q unescaped", bad)
		}
	}
	for _, want := range []string{
		"<title>湖州市营商环境月评议 · &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;</title>",
		`<text x="0" y="42" dy="15">&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;</text>`,
		"dept&#34;&gt;&lt;img src=x onerror=alert(1)&gt;",
		"&#39;single&#39; &amp; &#34;double&#34; &#43; more",
		"nul\ufffdbyte",
		"&amp;amp; &amp;#60; &amp;lt;",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}

// TestBinaryKeepsNoUnusedMethods guards the reason the review is written
// without html/template: the built function links no reflect method
// lookup, so the linker drops unused methods.
func TestBinaryKeepsNoUnusedMethods(t *testing.T) {
	t.Parallel()
	functest.NoReflectMethodLookups(t, binary)
}
