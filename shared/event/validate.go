package event

import (
	"strconv"
	"strings"
	"time"
)

// Counties are the county-level divisions of Huzhou used in `county` fields.
var Counties = map[string]string{
	"city":      "市本级",
	"wuxing":    "吴兴区",
	"nanxun":    "南浔区",
	"deqing":    "德清县",
	"changxing": "长兴县",
	"anji":      "安吉县",
}

// ValidateCounty checks a county code against the contract's list.
func ValidateCounty(field, county string) error {
	if county == "" {
		return Invalid(field, "is required")
	}
	if _, ok := Counties[county]; !ok {
		return Invalid(field, "unknown county %q (want one of city, wuxing, nanxun, deqing, changxing, anji)", county)
	}
	return nil
}

// Required reports an empty (or all-space) string field.
func Required(field, v string) error {
	if strings.TrimSpace(v) == "" {
		return Invalid(field, "is required")
	}
	return nil
}

// MaxLen bounds a free-text field, counted in characters.
func MaxLen(field, v string, n int) error {
	if len([]rune(v)) > n {
		return Invalid(field, "is longer than %d characters", n)
	}
	return nil
}

// ParseTime parses a required RFC 3339 timestamp field.
func ParseTime(field, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, Invalid(field, "is required")
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, Invalid(field, "is not an RFC 3339 timestamp: %q", v)
	}
	return t, nil
}

// ParseDate parses a required calendar date "2006-01-02".
func ParseDate(field, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, Invalid(field, "is required")
	}
	t, err := time.Parse(time.DateOnly, v)
	if err != nil {
		return time.Time{}, Invalid(field, "is not a date (YYYY-MM-DD): %q", v)
	}
	return t, nil
}

// FirstError returns the first non-nil error, so Validate methods read as a list.
func FirstError(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// Document is a file an event declares it will upload (signups, trades).
type Document struct {
	FileName    string `json:"fileName"`
	ContentType string `json:"contentType"`
	SizeBytes   int64  `json:"sizeBytes"`
}

// Document limits of the contract.
const (
	MaxDocuments     = 5
	MaxDocumentBytes = 20 << 20
)

// DocumentTypes are the content types a declared document may have.
var DocumentTypes = map[string]string{
	"application/pdf": ".pdf",
	"image/jpeg":      ".jpg",
	"image/png":       ".png",
	"application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
}

// Validate checks one declared document.
func (d Document) Validate() error {
	if err := Required("fileName", d.FileName); err != nil {
		return err
	}
	if strings.ContainsAny(d.FileName, "/\\\x00") || d.FileName == "." || d.FileName == ".." {
		return Invalid("fileName", "must be a plain file name without path separators")
	}
	if err := MaxLen("fileName", d.FileName, 200); err != nil {
		return err
	}
	if _, ok := DocumentTypes[d.ContentType]; !ok {
		return Invalid("contentType", "%q is not allowed (PDF, JPEG, PNG or .docx)", d.ContentType)
	}
	if d.SizeBytes <= 0 {
		return Invalid("sizeBytes", "must be positive")
	}
	if d.SizeBytes > MaxDocumentBytes {
		return Invalid("sizeBytes", "is over the 20 MiB limit")
	}
	return nil
}

// ValidateDocuments checks a documents list against the contract's limits.
func ValidateDocuments(field string, docs []Document) error {
	if len(docs) > MaxDocuments {
		return Invalid(field, "at most %d documents, got %d", MaxDocuments, len(docs))
	}
	for i, d := range docs {
		if err := d.Validate(); err != nil {
			return Prefix(field+"["+strconv.Itoa(i)+"]", err)
		}
	}
	return nil
}

// MaxIDLen bounds identifiers (forumId, appealId, tradeId, …).
const MaxIDLen = 100

// ValidateID checks an identifier that ends up in S3 keys, document paths
// and logs: 1–100 letters, digits, '-', '_' and '.', not starting with '.'
// (so it can never name a parent directory).
func ValidateID(field, id string) error {
	if id == "" {
		return Invalid(field, "is required")
	}
	if len(id) > MaxIDLen {
		return Invalid(field, "is longer than %d characters", MaxIDLen)
	}
	if id[0] == '.' {
		return Invalid(field, "must not start with '.'")
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return Invalid(field, "may contain only letters, digits, '-', '_' and '.'")
		}
	}
	return nil
}
