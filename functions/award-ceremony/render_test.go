package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qinqing/qinqing/shared/contract"
	"github.com/qinqing/qinqing/shared/runtime/functest"
)

var update = flag.Bool("update", false, "rewrite testdata/golden from the current renderer")

// hostileNames are texts a portal may send that mean something in HTML,
// or are not valid text at all.
var hostileNames = []string{
	`<script>alert("x")</script>`,
	`"><img src=x onerror=alert(1)>`,
	`'single' & "double" + more`,
	"nul\x00byte",
	"bad utf-8 \xff\xfe end",
	"&amp; &#60; &lt;",
	"{{.Name}} \u2028 \ufffd \ufdd0",
}

// goldenCeremonies cover every branch of the two documents: a winner of
// each category with and without citation, detail and presenter, empty
// sections and an empty top 50, with hostile text in every field that
// reaches a page.
func goldenCeremonies() map[string]Ceremony {
	h := hostileNames
	runner := Winner{candidate: candidate{NominationID: "run-1", Category: contract.AwardRunner, Name: "吴兴区", County: "wuxing",
		NominatedBy: h[0], Citation: h[1]}, Rank: 1}
	runner2 := Winner{candidate: candidate{NominationID: "run-2", Category: contract.AwardRunner, Name: h[2], County: h[3],
		NominatedBy: "市发改委"}, Rank: 2}
	contributor := Winner{candidate: candidate{NominationID: "con-1", Category: contract.AwardContributor, Name: h[4], USCC: h[5],
		County: "anji", NominatedBy: h[6], Citation: "多年来持续投入研发。"}, Rank: 1}
	striver := Winner{candidate: candidate{NominationID: "str-1", Category: contract.AwardStriver, Name: h[0], County: "deqing",
		Department: h[1], NominatedBy: "市人社局", Citation: h[2]}, Rank: 1}
	goodCase := Winner{candidate: candidate{NominationID: "gc-1", Category: contract.AwardGoodCase, Name: h[3], Department: h[0],
		County: "city", NominatedBy: h[4], Citation: h[6]}, Rank: 1, Presenter: &contributor}
	goodCase2 := Winner{candidate: candidate{NominationID: "gc-2", Category: contract.AwardGoodCase, Name: "好案例2号",
		Department: "市市场监管局", NominatedBy: "市政府办"}, Rank: 2}
	return map[string]Ceremony{
		"full": {Year: 2026, Winners: []Winner{runner, runner2, contributor, striver, goodCase, goodCase2}, Top50: []Ranked{
			{Rank: 1, USCC: h[0], Name: h[1], County: "wuxing", RevenueFen: 123456789012, TaxFen: 987654321, Employees: 1200},
			{Rank: 2, USCC: "91330500MA2B3C4D5B", Name: h[2], County: h[3], RevenueFen: 4999, TaxFen: 5000, Employees: 0},
			{Rank: 2, USCC: h[5], Name: h[6], County: "changxing", RevenueFen: 1000000000000, TaxFen: 0, Employees: 7},
		}},
		"sparse": {Year: 2027, Winners: []Winner{goodCase2}},
		"empty":  {Year: 2028},
	}
}

// TestDocumentsGolden compares every document with the bytes in
// testdata/golden (first written by the html/template renderer these
// writers replaced, so the pages did not change); go test -update
// rewrites them after a deliberate change to a page.
func TestDocumentsGolden(t *testing.T) {
	t.Parallel()
	for name, c := range goldenCeremonies() {
		docs, err := c.Documents()
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range docs {
			file := filepath.Join("testdata", "golden", name, filepath.FromSlash(d.Key))
			if *update {
				if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(file, d.Body, 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(d.Body, want) {
				t.Errorf("%s: %s differs from %s:\n%s", name, d.Key, file, d.Body)
			}
		}
	}
}

// TestDocumentsEscapeHostileText shows that no text of the data reaches
// a page as markup: every <, >, &, quote and + comes out as an entity and
// U+0000 as U+FFFD, in element text, <title> and attribute values alike.
func TestDocumentsEscapeHostileText(t *testing.T) {
	t.Parallel()
	c := goldenCeremonies()["full"]
	docs, err := c.Documents()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range docs[1:] {
		page := string(d.Body)
		for _, bad := range []string{"<script", "<img", "\x00", "'single'", `"double"`, "&amp; &#60;", "+ more"} {
			if strings.Contains(page, bad) {
				t.Errorf("%s contains %q unescaped", d.Key, bad)
			}
		}
	}
	programme := string(docs[1].Body)
	for _, want := range []string{
		"&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;",
		"&#34;&gt;&lt;img src=x onerror=alert(1)&gt;",
		"&#39;single&#39; &amp; &#34;double&#34; &#43; more",
		"nul\ufffdbyte",
		"&amp;amp; &amp;#60; &amp;lt;",
	} {
		if !strings.Contains(programme, want) {
			t.Errorf("programme lacks %q", want)
		}
	}
	// The certificate's <title> holds the winner's name.
	for _, d := range docs {
		if strings.HasSuffix(d.Key, "striver-1-str-1.html") && !strings.Contains(string(d.Body), "<title>荣誉证书 · 实干争先2026年度“奋斗者” · &lt;script&gt;") {
			t.Errorf("%s: title not escaped:\n%s", d.Key, d.Body)
		}
	}
}

// TestBinaryKeepsNoUnusedMethods guards the reason the documents are
// written without html/template: the built function links no reflect
// method lookup, so the linker drops unused methods.
func TestBinaryKeepsNoUnusedMethods(t *testing.T) {
	t.Parallel()
	functest.NoReflectMethodLookups(t, binary)
}
