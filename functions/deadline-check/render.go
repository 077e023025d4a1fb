package main

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"strconv"
	"sync"
	"time"

	"github.com/qinqing/qinqing/shared/appeal"
	"github.com/qinqing/qinqing/shared/event"
)

// RenderHTML renders the review as one self-contained page: inline CSS
// and inline SVG charts, no scripts, fonts or images from elsewhere, every
// text HTML-escaped by html/template. The page depends only on the review,
// so the same review gives the same bytes.
func RenderHTML(rv Review) ([]byte, error) {
	var buf bytes.Buffer
	if err := reviewPage().Execute(&buf, newPageData(rv)); err != nil {
		return nil, fmt.Errorf("render review: %w", err)
	}
	return buf.Bytes(), nil
}

// Chart geometry, in SVG user units.
const (
	chartWidth = 720
	labelWidth = 200
	barArea    = 420
	rowHeight  = 34
	barHeight  = 20
)

type bar struct {
	Label string
	Y     int // top of the row
	Parts []barPart
	Value string // text right of the bar
	TextX string
}

type barPart struct {
	X, W  string
	Y     int
	Class string
	Title string
}

type chart struct {
	Title  string
	Height int
	Bars   []bar
	Legend []legendItem
}

type legendItem struct {
	Label, Class string
	X            int
}

type kpi struct {
	Label, Value, Note string
}

type deptRow struct {
	Name, Code                                   string
	Received, OnTime, Overdue, Pending, Revisits int
	Satisfaction                                 string
}

type pageData struct {
	Title, Period, AsOf, Range string
	KPIs                       []kpi
	Rates, Categories, Depts   chart
	Departments                []deptRow
	Channels, Counties         []NamedCount
	Received                   int
}

func pct(r float64) string { return strconv.FormatFloat(r*100, 'f', 1, 64) + "%" }

func num(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) }

// barsChart lays out one horizontal bar per row, each split into parts
// whose widths are their values scaled so that max fills the bar area.
func barsChart(title string, max float64, rows []struct {
	label  string
	values []float64
	value  string
}, classes, titles []string) chart {
	c := chart{Title: title, Height: len(rows)*rowHeight + 16}
	if max <= 0 {
		max = 1
	}
	for i, r := range rows {
		b := bar{Label: r.label, Y: 8 + i*rowHeight, Value: r.value}
		x := float64(labelWidth)
		for j, v := range r.values {
			w := v / max * barArea
			if w <= 0 {
				continue
			}
			b.Parts = append(b.Parts, barPart{X: num(x), W: num(w), Y: b.Y, Class: classes[j], Title: titles[j] + " " + strconv.FormatFloat(v, 'f', -1, 64)})
			x += w
		}
		b.TextX = num(x + 8)
		c.Bars = append(c.Bars, b)
	}
	return c
}

type row = struct {
	label  string
	values []float64
	value  string
}

func newPageData(rv Review) pageData {
	p := pageData{Received: rv.Received}
	if t, err := time.Parse("2006-01", rv.Period); err == nil {
		p.Period = fmt.Sprintf("%d年%d月", t.Year(), int(t.Month()))
	} else {
		p.Period = rv.Period
	}
	p.Title = "湖州市营商环境月评议 · " + p.Period
	p.AsOf = rv.AsOf.Format("2006年1月2日 15:04（UTC-07:00）")
	p.Range = rv.From.Format("2006年1月2日") + " 至 " + rv.To.AddDate(0, 0, -1).Format("2006年1月2日")
	p.KPIs = []kpi{
		{"受理诉求", strconv.Itoa(rv.Received) + " 件", "本月受理的企业诉求"},
		{"按时交办率", pct(rv.AssignedOnTimeRate), fmt.Sprintf("%d 件按时 / %d 件已到期", rv.Assign.OnTime, rv.Assign.OnTime+rv.Assign.Late)},
		{"按时答复率", pct(rv.RepliedOnTimeRate), fmt.Sprintf("%d 件按时 / %d 件已到期", rv.Reply.OnTime, rv.Reply.OnTime+rv.Reply.Late)},
		{"回访率", pct(rv.RevisitRate), fmt.Sprintf("%d 件已回访 / %d 件已答复", rv.Revisited, rv.Replied)},
		{"满意率", pct(rv.SatisfactionRate), fmt.Sprintf("%d 次满意或基本满意 / %d 次回访", rv.Revisits.Satisfied+rv.Revisits.BasicallySatisfied, rv.Revisits.Total)},
	}
	p.Rates = barsChart("主要指标", 1, []row{
		{"按时交办率", []float64{rv.AssignedOnTimeRate}, pct(rv.AssignedOnTimeRate)},
		{"按时答复率", []float64{rv.RepliedOnTimeRate}, pct(rv.RepliedOnTimeRate)},
		{"回访率", []float64{rv.RevisitRate}, pct(rv.RevisitRate)},
		{"满意率", []float64{rv.SatisfactionRate}, pct(rv.SatisfactionRate)},
	}, []string{"rate"}, []string{"比率"})
	var cats []row
	maxCat := 0.0
	for _, c := range rv.TopCategories {
		cats = append(cats, row{appeal.CategoryName(c.Category), []float64{float64(c.Count)}, strconv.Itoa(c.Count) + " 件"})
		maxCat = max(maxCat, float64(c.Count))
	}
	p.Categories = barsChart("常见问题（诉求最多的类别）", maxCat, cats, []string{"count"}, []string{"件数"})
	var depts []row
	maxDept := 0.0
	for _, d := range rv.Departments {
		depts = append(depts, row{appeal.DepartmentName(d.Department),
			[]float64{float64(d.OnTime), float64(d.Overdue), float64(d.Pending)}, strconv.Itoa(d.Received) + " 件"})
		maxDept = max(maxDept, float64(d.Received))
		sat := "—"
		if d.Revisits > 0 {
			sat = pct(d.SatisfactionRate)
		}
		p.Departments = append(p.Departments, deptRow{Name: appeal.DepartmentName(d.Department), Code: d.Department,
			Received: d.Received, OnTime: d.OnTime, Overdue: d.Overdue, Pending: d.Pending, Revisits: d.Revisits, Satisfaction: sat})
	}
	p.Depts = barsChart("各部门答复情况", maxDept, depts, []string{"ontime", "overdue", "pending"}, []string{"按时答复", "超期", "办理中"})
	p.Depts.Legend = []legendItem{{"按时答复", "ontime", labelWidth}, {"超期", "overdue", labelWidth + 110}, {"办理中", "pending", labelWidth + 200}}
	p.Depts.Height += 24
	for _, c := range rv.Channels {
		name := c.Name
		if n, ok := appeal.ChannelNames[c.Name]; ok {
			name = n
		}
		p.Channels = append(p.Channels, NamedCount{Name: name, Count: c.Count})
	}
	for _, c := range rv.Counties {
		name := c.Name
		if n, ok := event.Counties[c.Name]; ok {
			name = n
		}
		p.Counties = append(p.Counties, NamedCount{Name: name, Count: c.Count})
	}
	return p
}

// reviewHTML is the page's template (templates/review.html): inline CSS,
// inline SVG, no scripts.
//
//go:embed templates/review.html
var reviewHTML string

// reviewPage is parsed on first use, not at start-up.
var reviewPage = sync.OnceValue(func() *template.Template {
	return template.Must(template.New("review").Parse(reviewHTML))
})
