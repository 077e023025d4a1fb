package event

import (
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// One canonical form for identifiers and text (docs/runtime.md, "Canonical
// form", has the per-field table).
//
// An identifier is every field that is part of a business key or of an S3
// key. It is either refused unless it already is in canonical form
// (ValidateID: opaque ids a system assigns, compared byte for byte), or
// normalised before it becomes a key (Code and Name: Unicode NFKC, then the
// case the field is folded to) and refused when the normalised form breaks
// the rule. Either way no two spellings that a person would read as the same
// key can make two keys: a trailing space, a zero-width space (U+200B) or a
// look-alike hyphen (U+2010) is a 400, full-width letters are their ASCII
// selves, and capitals are folded where the domain says case does not
// matter.
//
// Free text (Text) is anything else a person typed: valid UTF-8 without
// NUL or other control characters but tab, line feed and carriage return,
// at most a given number of characters.

// Case says how an identifier's letters are folded before it becomes a key.
type Case int

// Cases of an identifier.
const (
	KeepCase  Case = iota // case matters: "A-1" and "a-1" are two keys
	LowerCase             // case does not matter; the key is lower case
	UpperCase             // case does not matter; the key is upper case
)

// key returns s in NFKC, folded to case c. Folding can undo the
// composition (a capital with a combining mark whose lower-case form has a
// precomposed character), so a folded string is composed again.
func (c Case) key(s string) string {
	s = norm.NFKC.String(s)
	switch c {
	case LowerCase:
		return norm.NFKC.String(strings.ToLower(s))
	case UpperCase:
		return norm.NFKC.String(strings.ToUpper(s))
	}
	return s
}

// isCodeChar is the character set of codes and ids: ASCII letters, digits,
// '-', '_' and '.'.
func isCodeChar(c rune) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
}

// describe names a character for an error message without printing an
// invisible one raw: `' ' (U+0020)`, `U+200B (format character)`.
func describe(c rune) string {
	switch {
	case c == ' ':
		return "a space"
	case unicode.IsControl(c):
		return fmt.Sprintf("%U (a control character)", c)
	case unicode.Is(unicode.Cf, c):
		return fmt.Sprintf("%U (an invisible format character)", c)
	case unicode.IsSpace(c):
		return fmt.Sprintf("%U (a space character)", c)
	case !unicode.IsPrint(c):
		return fmt.Sprintf("%U", c)
	}
	return fmt.Sprintf("%q (%U)", c, c)
}

// checkCode checks the code rule on an already normalised id.
func checkCode(field, id string, max int) error {
	if id == "" {
		return Invalid(field, "is required")
	}
	if utf8.RuneCountInString(id) > max {
		return Invalid(field, "is longer than %d characters", max)
	}
	if id[0] == '.' {
		return Invalid(field, "must not start with '.'")
	}
	for _, c := range id {
		if !isCodeChar(c) {
			return Invalid(field, "contains %s; it may contain only ASCII letters, digits, '-', '_' and '.'", describe(c))
		}
	}
	return nil
}

// Code normalises *v, a code whose spelling may vary (a milestone name, a
// project or manifest number), to its key form — Unicode NFKC (full-width
// letters and digits become ASCII), then folded to case c — and checks the
// code rule on the result: 1–max ASCII letters, digits, '-', '_' and '.',
// not starting with '.'. Spaces (leading, trailing or inside), control and
// format characters and look-alike punctuation such as U+2010 are refused,
// not removed: a key must not silently differ from what was sent.
func Code(field string, v *string, max int, c Case) error {
	s := c.key(*v)
	if err := checkCode(field, s, max); err != nil {
		return err
	}
	*v = s
	return nil
}

// nameMarks are the punctuation marks a name may hold besides letters,
// marks, digits and single spaces.
const nameMarks = "-_.·'&()"

// Name normalises *v, a name used as a key (an honour, a judge), to its key
// form — Unicode NFKC, then folded to case c — and checks the name rule on
// the result: 1–max characters that are letters, combining marks, digits,
// single spaces between words or one of - _ . · ' & ( ); no leading or
// trailing space. NFKC turns full-width forms and the ideographic space
// into their ASCII selves; control and format characters (U+200B),
// look-alike dashes (U+2010) and other punctuation are refused.
func Name(field string, v *string, max int, c Case) error {
	s := c.key(*v)
	if strings.TrimSpace(s) == "" {
		return Invalid(field, "is required")
	}
	if utf8.RuneCountInString(s) > max {
		return Invalid(field, "is longer than %d characters", max)
	}
	if strings.TrimSpace(s) != s {
		return Invalid(field, "must not start or end with spaces")
	}
	prev := rune(0)
	for _, r := range s {
		switch {
		case unicode.IsLetter(r), unicode.IsMark(r), unicode.IsDigit(r), strings.ContainsRune(nameMarks, r):
		case r == ' ':
			if prev == ' ' {
				return Invalid(field, "must not contain two spaces in a row")
			}
		default:
			return Invalid(field, "contains %s; a name may contain only letters, digits, single spaces and %s", describe(r), nameMarks)
		}
		prev = r
	}
	*v = s
	return nil
}

// Text checks an optional free-text field: valid UTF-8, no NUL or other
// control character except tab, line feed and carriage return (Postgres
// text cannot hold NUL; the others have no business in a form's text), at
// most max characters. An empty value is allowed.
func Text(field, v string, max int) error {
	if !utf8.ValidString(v) {
		return Invalid(field, "is not valid UTF-8")
	}
	n := 0
	for _, c := range v {
		n++
		if unicode.IsControl(c) && c != '\t' && c != '\n' && c != '\r' {
			return Invalid(field, "contains %s", describe(c))
		}
	}
	if n > max {
		return Invalid(field, "is longer than %d characters", max)
	}
	return nil
}

// RequiredText is Text for a required field: it must hold more than
// spaces.
func RequiredText(field, v string, max int) error {
	if strings.TrimSpace(v) == "" {
		return Invalid(field, "is required")
	}
	return Text(field, v, max)
}

// FileName normalises *v, a declared document's file name (part of its S3
// key), with NFKC and checks it: 1–200 characters, no path separator,
// not "." or "..", no leading or trailing space, no control or format
// character.
func FileName(field string, v *string) error {
	s := norm.NFKC.String(*v)
	if strings.TrimSpace(s) == "" {
		return Invalid(field, "is required")
	}
	if utf8.RuneCountInString(s) > MaxFileNameLen {
		return Invalid(field, "is longer than %d characters", MaxFileNameLen)
	}
	if strings.ContainsAny(s, `/\`) || s == "." || s == ".." {
		return Invalid(field, "must be a plain file name without path separators")
	}
	if strings.TrimSpace(s) != s {
		return Invalid(field, "must not start or end with spaces")
	}
	for _, c := range s {
		if unicode.IsControl(c) || unicode.Is(unicode.Cf, c) || unicode.In(c, unicode.Zl, unicode.Zp) {
			return Invalid(field, "contains %s", describe(c))
		}
	}
	*v = s
	return nil
}

// MaxFileNameLen bounds a declared document's file name.
const MaxFileNameLen = 200

// ParseTime parses a required RFC 3339 timestamp strictly: Go's parser
// also takes offsets such as +24:00, which RFC 3339 does not (its offset
// hours are 00–23, minutes 00–59).
func ParseTime(field, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, Invalid(field, "is required")
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil || !validOffset(v) {
		return time.Time{}, Invalid(field, "is not an RFC 3339 timestamp (2006-01-02T15:04:05+08:00): %q", v)
	}
	return t, nil
}

// validOffset reports whether v ends in Z or in an offset ±hh:mm with
// hh ≤ 23 and mm ≤ 59.
func validOffset(v string) bool {
	if strings.HasSuffix(v, "Z") || strings.HasSuffix(v, "z") {
		return true
	}
	if len(v) < 6 {
		return false
	}
	o := v[len(v)-6:]
	if o[0] != '+' && o[0] != '-' || o[3] != ':' {
		return false
	}
	for _, i := range []int{1, 2, 4, 5} {
		if o[i] < '0' || o[i] > '9' {
			return false
		}
	}
	return o[1:3] <= "23" && o[4:6] <= "59"
}

// ParseDay parses a required calendar day given either as a date
// ("2026-12-01") or as an RFC 3339 timestamp, which is read as its
// calendar date in loc (the business time zone). The result is midnight
// UTC of that date, as ParseDate returns.
func ParseDay(field, v string, loc *time.Location) (time.Time, error) {
	if v == "" {
		return time.Time{}, Invalid(field, "is required")
	}
	if len(v) == len(time.DateOnly) {
		return ParseDate(field, v)
	}
	t, err := ParseTime(field, v)
	if err != nil {
		return time.Time{}, Invalid(field, "is neither a date (YYYY-MM-DD) nor an RFC 3339 timestamp: %q", v)
	}
	y, m, d := t.In(loc).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC), nil
}
