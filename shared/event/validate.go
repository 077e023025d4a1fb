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

// Upload is the answer to a declared Document: a presigned PUT for it,
// valid until ExpiresAt (shared/docs makes them).
type Upload struct {
	FileName  string    `json:"fileName"`
	Key       string    `json:"key"`
	URL       string    `json:"url"`
	ExpiresAt time.Time `json:"expiresAt"`
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

// Validate checks one declared document and puts its file name in
// canonical form (FileName): the name becomes part of an S3 key.
func (d *Document) Validate() error {
	if err := FileName("fileName", &d.FileName); err != nil {
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

// ValidateDocuments checks a documents list against the contract's limits,
// naming a bad document by its index ("documents[2].sizeBytes").
func ValidateDocuments(field string, docs []Document) error {
	if len(docs) > MaxDocuments {
		return Invalid(field, "at most %d documents, got %d", MaxDocuments, len(docs))
	}
	for i := range docs {
		if err := docs[i].Validate(); err != nil {
			return Prefix(field+"["+strconv.Itoa(i)+"]", err)
		}
	}
	return nil
}

// MaxIDLen bounds identifiers (forumId, appealId, tradeId, …).
const MaxIDLen = 100

// ValidateID checks an opaque identifier (an id one system assigns and
// others quote back: forumId, appealId, tradeId, …) that ends up in
// business keys, S3 keys and logs. It is refused unless it already is in
// canonical form — 1–100 ASCII letters, digits, '-', '_' and '.', not
// starting with '.' (so it can never name a parent directory) — and is
// compared byte for byte: case matters, as in the UUIDs qinqing derives.
func ValidateID(field, id string) error { return checkCode(field, id, MaxIDLen) }

// OptionalID is ValidateID for an id that may be absent ("").
func OptionalID(field, id string) error {
	if id == "" {
		return nil
	}
	return ValidateID(field, id)
}
