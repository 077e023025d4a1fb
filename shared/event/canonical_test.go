package event

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/qinqing/qinqing/shared/testkit"
)

// The five spellings of one milestone from the attack of issue 12: the
// key form is one, or the spelling is refused.
func TestCodeMilestoneSpellings(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"production-started": "production-started",
		"Production-Started": "production-started",
		"ｐｒｏｄｕｃｔｉｏｎ－ｓｔａｒｔｅｄ": "production-started", // full width: NFKC
		"production-started ":      "",
		" production-started":      "",
		"production-started\u200b": "",
		"production\u2010started":  "",
		"production\x00started":    "",
		"production started":       "",
		"":                         "",
		".hidden":                  "",
		strings.Repeat("a", 101):   "",
	} {
		v := in
		err := Code("milestone", &v, 100, LowerCase)
		switch {
		case want == "" && err == nil:
			t.Errorf("Code(%q) = %q, want an error", in, v)
		case want == "" && (ErrorCode(err) != EINVALID || err.(*Error).Field != "milestone"):
			t.Errorf("Code(%q) = %v, want EINVALID naming milestone", in, err)
		case want != "" && (err != nil || v != want):
			t.Errorf("Code(%q) = %q, %v; want %q", in, v, err, want)
		}
	}
	up := "hz-2026-0178"
	if err := Code("projectId", &up, 100, UpperCase); err != nil || up != "HZ-2026-0178" {
		t.Errorf("Code upper = %q, %v", up, err)
	}
}

func TestName(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"金象金牛":               "金象金牛",
		"Judge-01":           "judge-01",
		"ｊｕｄｇｅ－０１":           "judge-01",
		"王\u3000教授":          "王 教授", // ideographic space → space
		"O'Brien & Co. (湖州)": "o'brien & co. (湖州)",
		"金象金牛 ":              "",
		"金象\u200b金牛":         "",
		"judge\u201001":      "",
		"a  b":               "",
		"a\x00b":             "",
		"a/b":                "",
		"":                   "",
		"   ":                "",
	} {
		v := in
		err := Name("judge", &v, 20, LowerCase)
		switch {
		case want == "" && err == nil:
			t.Errorf("Name(%q) = %q, want an error", in, v)
		case want != "" && (err != nil || v != want):
			t.Errorf("Name(%q) = %q, %v; want %q", in, v, err, want)
		}
	}
}

func TestText(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"", "融资难", "line 1\nline 2\r\n\tindented", "emoji 👩‍💻 with ZWJ", "=1+1"} {
		if err := Text("topic", ok, 100); err != nil {
			t.Errorf("Text(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{"a\x00b", "a\x01", "bell\a", "esc\x1b[31m", "del\x7f", "c1\u0085", "\xff\xfe", strings.Repeat("长", 101)} {
		if err := Text("topic", bad, 100); ErrorCode(err) != EINVALID || err.(*Error).Field != "topic" {
			t.Errorf("Text(%q) = %v, want EINVALID naming topic", bad, err)
		}
	}
	if err := RequiredText("title", " \n", 10); err == nil {
		t.Error("RequiredText accepted blanks")
	}
}

func TestFileName(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"营业执照.pdf": "营业执照.pdf", "ａ.pdf": "a.pdf", "my file.pdf": "my file.pdf"} {
		v := in
		if err := FileName("fileName", &v); err != nil || v != want {
			t.Errorf("FileName(%q) = %q, %v; want %q", in, v, err, want)
		}
	}
	for _, bad := range []string{"", "..", ".", "a/b.pdf", `a\b.pdf`, "a\x00.pdf", "a\u200b.pdf", " a.pdf", "a.pdf ", "a\u2028.pdf", "／etc.pdf"} {
		v := bad
		if err := FileName("fileName", &v); err == nil {
			t.Errorf("FileName(%q) = %q, want an error", bad, v)
		}
	}
}

func TestParseTimeStrictOffset(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"2026-12-01T10:00:00+08:00", "2026-12-01T10:00:00Z", "2026-12-01T10:00:00.123456-23:59", "2026-12-01T10:00:00+00:00"} {
		if _, err := ParseTime("at", ok); err != nil {
			t.Errorf("ParseTime(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"2026-12-01T10:00:00+24:00", "2026-12-01T10:00:00-24:00", "2026-12-01T10:00:00+23:60", "2026-12-01T10:00:00", "2026-12-01", "2026-12-01 10:00:00Z", ""} {
		if _, err := ParseTime("at", bad); ErrorCode(err) != EINVALID {
			t.Errorf("ParseTime(%q) = %v, want EINVALID", bad, err)
		}
	}
}

func TestParseDay(t *testing.T) {
	t.Parallel()
	sh := testkit.Shanghai
	for in, want := range map[string]string{
		"2026-12-01":                "2026-12-01",
		"2026-12-01T00:00:00+08:00": "2026-12-01",
		"2026-11-30T16:00:00Z":      "2026-12-01", // midnight in Huzhou
		"2026-11-30T15:59:59Z":      "2026-11-30",
	} {
		d, err := ParseDay("validFrom", in, sh)
		if err != nil || d.Format(time.DateOnly) != want {
			t.Errorf("ParseDay(%q) = %v, %v; want %s", in, d, err, want)
		}
	}
	for _, bad := range []string{"2026-13-01", "2026-12-01T10:00:00+24:00", "tomorrow", ""} {
		if _, err := ParseDay("validFrom", bad, sh); ErrorCode(err) != EINVALID {
			t.Errorf("ParseDay(%q) = %v, want EINVALID", bad, err)
		}
	}
}

// FuzzCanonical: whatever the input, an accepted code or name is its own
// canonical form (normalising it again changes nothing), and accepted text
// holds no control character Postgres or a form would choke on.
func FuzzCanonical(f *testing.F) {
	for _, s := range []string{"production-started", "Production-Started ", "production-started\u200b", "production\u2010started", "金象金牛", "ｐｒｏｄ", "a\x00b", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v := s
		if err := Code("c", &v, 100, LowerCase); err == nil {
			again := v
			if err := Code("c", &again, 100, LowerCase); err != nil || again != v {
				t.Fatalf("Code(%q) = %q is not canonical: %q %v", s, v, again, err)
			}
		}
		v = s
		if err := Name("n", &v, 100, LowerCase); err == nil {
			again := v
			if err := Name("n", &again, 100, LowerCase); err != nil || again != v {
				t.Fatalf("Name(%q) = %q is not canonical: %q %v", s, v, again, err)
			}
		}
		if err := Text("t", s, 1000); err == nil {
			if !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
				t.Fatalf("Text accepted %q", s)
			}
		}
	})
}
