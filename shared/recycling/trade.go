package recycling

import (
	"strings"
	"time"

	"github.com/qinqing/qinqing/shared/event"
)

// WasteCode is the national hazardous-waste code of waste lead-acid
// batteries (HW31, 900-052-31): the only waste this platform records.
const WasteCode = "900-052-31"

// Plausible weight of one battery set, in grams: 1–100 kg inclusive.
const (
	MinGramsPerSet = 1_000
	MaxGramsPerSet = 100_000
)

// Refusal reasons of contract section 7, in the order a trade is judged:
// the first that applies is the answer.
const (
	ReasonDuplicateManifest = "duplicate_manifest"
	ReasonUnknownLicence    = "unknown_licence"
	ReasonLicenceNotValid   = "licence_not_valid"
	ReasonImplausibleWeight = "implausible_weight"
	ReasonCapacityExceeded  = "capacity_exceeded"
)

// Trade is one transfer of waste batteries from a producer (a shop or
// garage, 产废单位) to a licensed collector (收集单位), on one manifest.
type Trade struct {
	TradeID        string
	ManifestNo     string
	ProducerUSCC   string
	ProducerName   string
	ProducerCounty string
	CollectorUSCC  string
	LicenceNo      string
	WasteCode      string
	BatterySets    int64
	WeightGrams    int64
	AmountFen      int64
	OccurredAt     time.Time
}

// Validate checks what makes a trade well-formed, with fields named by
// their JSON path, and puts its keys in canonical form (ManifestKey,
// LicenceKey): the single trade and the CSV import get the same keys. asOf is the time of the event that carries the trade:
// a trade cannot have happened after it. The weight is parsed by the
// caller (ParseWeight); its plausibility is a business judgement (Judge),
// not a validation.
func (t *Trade) Validate(asOf time.Time) error {
	if err := event.FirstError(
		event.ValidateID("tradeId", t.TradeID),
		ManifestKey("manifestNo", &t.ManifestNo),
		event.ValidateUSCC("producer.uscc", t.ProducerUSCC),
		event.RequiredText("producer.name", t.ProducerName, 200),
		event.ValidateCounty("producer.county", t.ProducerCounty),
		event.ValidateUSCC("collector.uscc", t.CollectorUSCC),
		LicenceKey("collector.licenceNo", &t.LicenceNo),
	); err != nil {
		return err
	}
	if t.WasteCode != WasteCode {
		return event.Invalid("wasteCode", "must be %q (HW31 waste lead-acid batteries), got %q", WasteCode, t.WasteCode)
	}
	if t.BatterySets <= 0 {
		return event.Invalid("batterySets", "must be greater than 0, got %d", t.BatterySets)
	}
	if t.WeightGrams < 0 {
		return event.Invalid("weightKg", "must not be negative")
	}
	if t.AmountFen < 0 {
		return event.Invalid("amountFen", "must not be negative, got %d", t.AmountFen)
	}
	if t.OccurredAt.IsZero() {
		return event.Invalid("occurredAt", "is required")
	}
	if t.OccurredAt.After(asOf) {
		return event.Invalid("occurredAt", "is after the event time %s", asOf.UTC().Format(time.RFC3339))
	}
	return nil
}

// PlausibleWeight reports whether the weight is 1–100 kg per battery set,
// bounds included. It divides rather than multiplies, so no count can
// overflow.
func (t *Trade) PlausibleWeight() bool {
	if t.BatterySets <= 0 || t.WeightGrams < 0 {
		return false
	}
	// grams ≥ 1000·sets ⇔ ⌊grams/1000⌋ ≥ sets; grams ≤ 100000·sets ⇔ ⌈grams/100000⌉ ≤ sets.
	ceil := t.WeightGrams / MaxGramsPerSet
	if t.WeightGrams%MaxGramsPerSet != 0 {
		ceil++
	}
	return t.WeightGrams/MinGramsPerSet >= t.BatterySets && ceil <= t.BatterySets
}

// Year is the calendar year of the trade in the business time zone: the
// year whose capacity it uses.
func (t *Trade) Year(loc *time.Location) int { return t.OccurredAt.In(loc).Year() }

// Licence is a collector's hazardous-waste operating licence (危险废物经营许可证).
type Licence struct {
	LicenceNo     string
	CollectorUSCC string
	CollectorName string
	// ValidFrom and ValidTo are calendar dates ("2006-01-02"), both
	// inclusive, in the business time zone.
	ValidFrom string
	ValidTo   string
	// CapacityGrams is the annual capacity (annualCapacityKg) in grams.
	CapacityGrams int64
}

// ValidAt reports whether the licence covers the instant t: t's calendar
// date in loc lies between ValidFrom and ValidTo, both included.
func (l *Licence) ValidAt(t time.Time, loc *time.Location) bool {
	d := t.In(loc).Format(time.DateOnly)
	return d >= l.ValidFrom && d <= l.ValidTo
}

// Judge applies the refusals that depend on the trade and its licence
// alone, in contract order after duplicate_manifest: unknown_licence (no
// licence of that number, or one held by another collector),
// licence_not_valid at occurredAt, implausible_weight. It returns "" when
// none applies; the capacity check comes last and needs the collector's
// running total. lic is nil when no licence has the trade's number.
func Judge(t *Trade, lic *Licence, loc *time.Location) string {
	switch {
	case lic == nil || lic.CollectorUSCC != t.CollectorUSCC:
		return ReasonUnknownLicence
	case !lic.ValidAt(t.OccurredAt, loc):
		return ReasonLicenceNotValid
	case !t.PlausibleWeight():
		return ReasonImplausibleWeight
	}
	return ""
}

// ManifestKey puts a manifest number (转移联单号, the key of "one trade per
// manifest") in its key form: NFKC, upper case, then the code rule of
// shared/event (ASCII letters, digits, '-', '_', '.'); a space, U+200B or
// a look-alike hyphen is refused, full-width digits are their ASCII selves.
func ManifestKey(field string, v *string) error { return event.Code(field, v, 100, event.UpperCase) }

// LicenceKey puts a licence number in its key form, as ManifestKey does.
func LicenceKey(field string, v *string) error { return event.Code(field, v, 100, event.UpperCase) }

// Text checks a required text field with the free-text rule of
// shared/event (valid UTF-8, no control characters but tab and line
// breaks, at most max characters). An identifier (ident) may not start or
// end with spaces either. Identifiers that are keys use ManifestKey,
// LicenceKey or event.ValidateID instead.
func Text(field, v string, max int, ident bool) error {
	if err := event.RequiredText(field, v, max); err != nil {
		return err
	}
	if ident && strings.TrimSpace(v) != v {
		return event.Invalid(field, "must not start or end with spaces")
	}
	if ident && strings.ContainsAny(v, "\t\n\r") {
		return event.Invalid(field, "must not contain control characters")
	}
	return nil
}
