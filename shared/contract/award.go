package contract

import (
	"bytes"
	"encoding/json"
	"math/big"
	"strconv"
	"strings"

	"github.com/qinqing/qinqing/shared/event"
)

// Event types of the 实干争先 awards and the enterprise figures (contract
// section 8). The rejected replies are not named by the contract; they
// follow its convention for business refusals (see docs/awards.md).
const (
	TypeMetricsReported     = "cn.huzhou.enterprise.metrics.reported"
	TypeMetricsAccepted     = "cn.huzhou.enterprise.metrics.accepted"
	TypeNominationSubmitted = "cn.huzhou.award.nomination.submitted"
	TypeNominationAccepted  = "cn.huzhou.award.nomination.accepted"
	TypeNominationRejected  = "cn.huzhou.award.nomination.rejected"
	TypeScoreRecorded       = "cn.huzhou.award.score.recorded"
	TypeScoreAccepted       = "cn.huzhou.award.score.accepted"
	TypeScoreRejected       = "cn.huzhou.award.score.rejected"
	TypeCeremonyPublished   = "cn.huzhou.award.ceremony.published"
)

// Award categories of 实干争先, in the order the ceremony presents them.
const (
	AwardRunner      = "runner"      // 奔跑者: counties
	AwardContributor = "contributor" // 贡献者: enterprises
	AwardStriver     = "striver"     // 奋斗者: individuals
	AwardGoodCase    = "good_case"   // 好案例: government departments' good cases
)

// AwardCategories lists the categories in ceremony order.
var AwardCategories = []string{AwardRunner, AwardContributor, AwardStriver, AwardGoodCase}

// Limits on years and free text of the awards.
const (
	minAwardYear = 2000
	maxAwardYear = 2100
	maxAwardName = 200
	maxCitation  = 2000
)

// MetricsReported is an enterprise's figures for a year.
type MetricsReported struct {
	USCC       string `json:"uscc"`
	Name       string `json:"name"`
	County     string `json:"county"`
	Year       int    `json:"year"`
	Private    *bool  `json:"private"`
	RevenueFen *int64 `json:"revenueFen"`
	TaxFen     *int64 `json:"taxFen"`
	Employees  *int64 `json:"employees"`
}

// Validate checks the payload. The year only has to lie in 2000–2100:
// it is data, not judged against the event time (an event may come without
// one, and its receipt time says nothing about the year reported).
func (p *MetricsReported) Validate() error {
	if err := event.FirstError(
		event.ValidateUSCC("uscc", p.USCC),
		event.RequiredText("name", p.Name, maxAwardName),
		event.ValidateCounty("county", p.County),
		validAwardYear("year", p.Year),
	); err != nil {
		return err
	}
	if p.Private == nil {
		return event.Invalid("private", "is required (true or false)")
	}
	return event.FirstError(
		nonNegative("revenueFen", p.RevenueFen),
		nonNegative("taxFen", p.TaxFen),
		nonNegative("employees", p.Employees),
	)
}

// Nominee is who (or what) is nominated: a county for runner, an
// enterprise for contributor, a person for striver, a department's case
// for good_case.
type Nominee struct {
	Name       string `json:"name"`
	USCC       string `json:"uscc"`
	County     string `json:"county"`
	Department string `json:"department"`
}

// NominationSubmitted nominates a candidate for one category and year.
type NominationSubmitted struct {
	NominationID string  `json:"nominationId"`
	Year         int     `json:"year"`
	Category     string  `json:"category"`
	Nominee      Nominee `json:"nominee"`
	NominatedBy  string  `json:"nominatedBy"`
	Citation     string  `json:"citation"`
}

// Validate checks the payload. Which nominee fields are required depends
// on the category: runner needs nominee.county, contributor a valid
// nominee.uscc, good_case nominee.department; a field given where it is
// optional must still be valid.
func (p *NominationSubmitted) Validate() error {
	if err := event.FirstError(
		event.ValidateID("nominationId", p.NominationID),
		validAwardYear("year", p.Year),
	); err != nil {
		return err
	}
	switch p.Category {
	case AwardRunner, AwardContributor, AwardStriver, AwardGoodCase:
	case "":
		return event.Invalid("category", "is required (runner, contributor, striver or good_case)")
	default:
		return event.Invalid("category", "unknown category %q (want runner, contributor, striver or good_case)", p.Category)
	}
	n := p.Nominee
	if err := event.FirstError(
		event.RequiredText("nominee.name", n.Name, maxAwardName),
		event.Text("nominee.department", n.Department, maxAwardName),
	); err != nil {
		return err
	}
	switch p.Category {
	case AwardRunner:
		if n.County == "" {
			return event.Invalid("nominee.county", "is required for category runner")
		}
	case AwardContributor:
		if n.USCC == "" {
			return event.Invalid("nominee.uscc", "is required for category contributor")
		}
	case AwardGoodCase:
		if strings.TrimSpace(n.Department) == "" {
			return event.Invalid("nominee.department", "is required for category good_case")
		}
	}
	if n.USCC != "" {
		if err := event.ValidateUSCC("nominee.uscc", n.USCC); err != nil {
			return err
		}
	}
	if n.County != "" {
		if err := event.ValidateCounty("nominee.county", n.County); err != nil {
			return err
		}
	}
	return event.FirstError(
		event.RequiredText("nominatedBy", p.NominatedBy, maxAwardName),
		event.Text("citation", p.Citation, maxCitation),
	)
}

// ScoreRecorded is one judge's score for a nomination.
type ScoreRecorded struct {
	NominationID string          `json:"nominationId"`
	Judge        string          `json:"judge"`
	Score        json.RawMessage `json:"score"`

	// centi is the score in hundredths of a point (0–10000).
	centi int64
}

// Centi is the score in hundredths of a point (0–10000), as Validate
// parsed it.
func (p *ScoreRecorded) Centi() int64 { return p.centi }

// Validate checks the payload and parses the score: a JSON number from 0
// to 100 with at most two decimal places.
func (p *ScoreRecorded) Validate() error {
	if err := event.FirstError(
		event.ValidateID("nominationId", p.NominationID),
		judgeKey("judge", &p.Judge),
	); err != nil {
		return err
	}
	var err error
	p.centi, err = ParseScore("score", p.Score)
	return err
}

// ParseScore reads a score given as a JSON number into hundredths of a
// point, exactly (no floating point).
func ParseScore(field string, raw json.RawMessage) (int64, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return 0, event.Invalid(field, "is required (a number from 0 to 100)")
	}
	if c := raw[0]; c != '-' && (c < '0' || c > '9') {
		return 0, event.Invalid(field, "must be a number, got JSON %s", jsonKind(c))
	}
	// Bound the exponent before big.Rat expands it: 1e999999999 is a
	// valid JSON number.
	if i := bytes.IndexAny(raw, "eE"); i >= 0 {
		if exp, err := strconv.Atoi(string(raw[i+1:])); err != nil || exp < -20 || exp > 20 {
			return 0, event.Invalid(field, "has an exponent out of range: %s", raw)
		}
	}
	r, ok := new(big.Rat).SetString(string(raw))
	if !ok {
		return 0, event.Invalid(field, "is not a number: %s", raw)
	}
	if r.Sign() < 0 || r.Cmp(big.NewRat(100, 1)) > 0 {
		return 0, event.Invalid(field, "must be between 0 and 100, got %s", raw)
	}
	r.Mul(r, big.NewRat(100, 1))
	if !r.IsInt() {
		return 0, event.Invalid(field, "has more than two decimal places: %s", raw)
	}
	return r.Num().Int64(), nil
}

func jsonKind(c byte) string {
	switch c {
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case '[':
		return "array"
	case '{':
		return "object"
	}
	return "value"
}

// FormatScore renders hundredths of a point as a decimal without trailing
// zeros ("85.5", "90", "72.25").
func FormatScore(centi int64) string {
	s := strconv.FormatInt(centi/100, 10)
	if frac := centi % 100; frac != 0 {
		f := strconv.FormatInt(100+frac, 10)[1:]
		s += "." + strings.TrimRight(f, "0")
	}
	return s
}

// judgeKey puts a judge's name in its key form (one score per judge and
// nomination): NFKC, lower case, the name rule of shared/event, so
// "Judge-01", "ｊｕｄｇｅ-01" and "judge-01" are one judge and
// "judge-01 " or "judge\u200b-01" are refused.
func judgeKey(field string, v *string) error {
	return event.Name(field, v, maxAwardName, event.LowerCase)
}

func validAwardYear(field string, year int) error {
	if year == 0 {
		return event.Invalid(field, "is required")
	}
	if year < minAwardYear || year > maxAwardYear {
		return event.Invalid(field, "must be between %d and %d, got %d", minAwardYear, maxAwardYear, year)
	}
	return nil
}

func nonNegative(field string, v *int64) error {
	if v == nil {
		return event.Invalid(field, "is required (an integer ≥ 0)")
	}
	if *v < 0 {
		return event.Invalid(field, "must not be negative, got %d", *v)
	}
	return nil
}

// MetricsAccepted is the data of metrics.accepted. Superseded is true when
// a report with a later event time was already on file, so this one was
// recorded as handled but did not replace it.
type MetricsAccepted struct {
	USCC       string `json:"uscc"`
	Year       int    `json:"year"`
	Superseded bool   `json:"superseded"`
}

// NominationReply is the data of nomination.accepted and
// nomination.rejected (reason "duplicate_nomination").
type NominationReply struct {
	NominationID string `json:"nominationId"`
	Year         int    `json:"year"`
	Category     string `json:"category"`
	Reason       string `json:"reason,omitempty"`
}

// ScoreReply is the data of score.accepted and score.rejected (reason
// "unknown_nomination"). Superseded is true when the judge's score with a
// later event time was already on file.
type ScoreReply struct {
	NominationID string      `json:"nominationId"`
	Judge        string      `json:"judge"`
	Score        json.Number `json:"score"`
	Superseded   bool        `json:"superseded"`
	Reason       string      `json:"reason,omitempty"`
}

// CeremonyPublished is the data of award.ceremony.published.
type CeremonyPublished struct {
	Year      int           `json:"year"`
	Top50     []TopEntry    `json:"top50"`
	Winners   []WinnerEntry `json:"winners"`
	Documents []string      `json:"documents"`
}

// TopEntry is one enterprise of the top 50 in the reply.
type TopEntry struct {
	Rank int    `json:"rank"`
	USCC string `json:"uscc"`
	Name string `json:"name"`
}

// WinnerEntry is one winner in the reply. Presenter is the name of the
// contributor winner presenting a good_case award, "" for the other
// categories (and for good_case when no contributor won).
type WinnerEntry struct {
	Category     string `json:"category"`
	Rank         int    `json:"rank"`
	NominationID string `json:"nominationId"`
	Name         string `json:"name"`
	Presenter    string `json:"presenter"`
}
