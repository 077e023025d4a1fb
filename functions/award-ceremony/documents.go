package main

import (
	"bytes"
	"context"
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/qinqing/qinqing/shared/contract"
	"github.com/qinqing/qinqing/shared/docs"
	"github.com/qinqing/qinqing/shared/event"
)

// Document is one file of the ceremony, ready to store.
type Document struct {
	Key         string
	ContentType string
	Body        []byte
}

// Content types of the documents.
const (
	contentCSV  = "text/csv; charset=utf-8"
	contentHTML = "text/html; charset=utf-8"
)

// categoryInfo is how a category is named in print.
type categoryInfo struct {
	Title   string // the award's name
	Honoree string // who receives it
	Number  string // the programme item that presents it
}

var categoryNames = map[string]categoryInfo{
	contract.AwardRunner:      {Title: "奔跑者", Honoree: "县区", Number: "二"},
	contract.AwardContributor: {Title: "贡献者", Honoree: "企业", Number: "三"},
	contract.AwardStriver:     {Title: "奋斗者", Honoree: "个人", Number: "四"},
	contract.AwardGoodCase:    {Title: "好案例", Honoree: "政府部门", Number: "五"},
}

// top50Header is the first row of top50.csv.
var top50Header = []string{"rank", "uscc", "name", "county", "revenueFen", "taxFen", "employees"}

// Documents renders every document of the ceremony: top50.csv,
// programme.html and one certificate per winner, in that order. The
// output depends only on c, so equal results give byte-identical files.
func (c Ceremony) Documents() ([]Document, error) {
	base := path.Join("awards", itoa(c.Year))
	csvBody, err := c.top50CSV()
	if err != nil {
		return nil, err
	}
	out := []Document{{Key: base + "/top50.csv", ContentType: contentCSV, Body: csvBody}}
	out = append(out, Document{Key: base + "/programme.html", ContentType: contentHTML, Body: programme(c.programmeView())})
	for _, w := range c.Winners {
		out = append(out, Document{Key: c.certificateKey(w), ContentType: contentHTML, Body: certificate(c.winnerView(w))})
	}
	return out, nil
}

// certificateKey is awards/<year>/certificates/<category>-<rank>-<nominationId>.html.
func (c Ceremony) certificateKey(w Winner) string {
	return c.certificatePrefix() + fmt.Sprintf("%s-%d-%s.html", w.Category, w.Rank, w.NominationID)
}

func (c Ceremony) top50CSV() ([]byte, error) {
	var buf bytes.Buffer
	cw := docs.NewCSVWriter(&buf)
	_ = cw.Write(top50Header)
	for _, e := range c.Top50 {
		_ = cw.Write([]string{itoa(e.Rank), e.USCC, e.Name, e.County,
			strconv.FormatInt(e.RevenueFen, 10), strconv.FormatInt(e.TaxFen, 10), strconv.FormatInt(e.Employees, 10)})
	}
	if err := cw.Flush(); err != nil {
		return nil, fmt.Errorf("top50.csv: %w", err)
	}
	return buf.Bytes(), nil
}

// Views: what the pages print, already formatted (render.go).

type rankedView struct {
	Rank         int
	Name, USCC   string
	County       string
	Revenue, Tax string // 万元, two decimals
	Employees    int64
}

type winnerView struct {
	Category  string
	Title     string
	Rank      int
	Name      string
	Detail    string
	Recipient string
	Citation  string
	Nominator string
	Presenter string
	Serial    string
	Year      int
}

type sectionView struct {
	Category string
	Number   string
	Title    string
	Honoree  string
	Winners  []winnerView
}

type programmeView struct {
	Year     int
	Top50    []rankedView
	Sections []sectionView
}

func (c Ceremony) programmeView() programmeView {
	v := programmeView{Year: c.Year}
	for _, e := range c.Top50 {
		v.Top50 = append(v.Top50, rankedView{Rank: e.Rank, Name: e.Name, USCC: e.USCC, County: countyName(e.County),
			Revenue: wan(e.RevenueFen), Tax: wan(e.TaxFen), Employees: e.Employees})
	}
	for _, cat := range contract.AwardCategories {
		info := categoryNames[cat]
		s := sectionView{Category: cat, Number: info.Number, Title: info.Title, Honoree: info.Honoree}
		for _, w := range c.Winners {
			if w.Category == cat {
				s.Winners = append(s.Winners, c.winnerView(w))
			}
		}
		v.Sections = append(v.Sections, s)
	}
	return v
}

func (c Ceremony) winnerView(w Winner) winnerView {
	info := categoryNames[w.Category]
	v := winnerView{Category: w.Category, Title: info.Title, Rank: w.Rank, Name: w.Name,
		Recipient: w.Name, Citation: w.Citation, Nominator: w.NominatedBy, Year: c.Year,
		Serial: fmt.Sprintf("SGZX-%d-%s-%02d", c.Year, strings.ToUpper(strings.ReplaceAll(w.Category, "_", "")), w.Rank)}
	var details []string
	switch w.Category {
	case contract.AwardGoodCase:
		// The department receives the award; the certificate names it as
		// the recipient, the programme beside the case.
		v.Recipient = w.Department
		details = append(details, w.Department)
	case contract.AwardContributor:
		details = append(details, "统一社会信用代码 "+w.USCC)
	}
	if w.County != "" && countyName(w.County) != w.Name {
		details = append(details, countyName(w.County))
	}
	if w.Category == contract.AwardStriver && w.Department != "" {
		details = append(details, w.Department)
	}
	v.Detail = strings.Join(details, " · ")
	if w.Presenter != nil {
		v.Presenter = w.Presenter.Name
	}
	return v
}

func countyName(code string) string {
	if n, ok := event.Counties[code]; ok {
		return n
	}
	return code
}

// wan formats an amount in fen as 万元 with two decimals, rounded half up,
// with thousands separators ("12,345.68").
func wan(fen int64) string {
	hundredths := (fen + 5000) / 10000 // 1 万元 = 1,000,000 fen
	whole, frac := hundredths/100, hundredths%100
	s := strconv.FormatInt(whole, 10)
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return fmt.Sprintf("%s.%02d", b.String(), frac)
}

func itoa(n int) string { return strconv.Itoa(n) }

// publish stores the documents (before the commit, under fixed keys, so a
// retry overwrites rather than leaving orphans), removes certificates
// under certPrefix that no longer belong to a winner (a rerun after a
// score changed the ranking), and returns the keys in order.
func (f *Function) publish(ctx context.Context, certPrefix string, docs []Document) ([]string, error) {
	keys := make([]string, len(docs))
	keep := make(map[string]bool, len(docs))
	for i, d := range docs {
		if err := f.docs.Put(ctx, d.Key, d.ContentType, d.Body); err != nil {
			return nil, err
		}
		keys[i] = d.Key
		keep[d.Key] = true
	}
	pages := s3.NewListObjectsV2Paginator(f.docs.Client(), &s3.ListObjectsV2Input{
		Bucket: aws.String(f.docs.Bucket), Prefix: aws.String(certPrefix)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list s3://%s/%s: %w", f.docs.Bucket, certPrefix, err)
		}
		for _, o := range page.Contents {
			if o.Key == nil || keep[*o.Key] {
				continue
			}
			if _, err := f.docs.Client().DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(f.docs.Bucket), Key: o.Key}); err != nil {
				return nil, fmt.Errorf("delete stale s3://%s/%s: %w", f.docs.Bucket, *o.Key, err)
			}
		}
	}
	return keys, nil
}
