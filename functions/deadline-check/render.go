package main

import (
	"fmt"
	"strconv"
	"time"

	"github.com/qinqing/qinqing/shared/appeal"
	"github.com/qinqing/qinqing/shared/event"
	"github.com/qinqing/qinqing/shared/htmltext"
)

// RenderHTML renders the review as one self-contained page: inline CSS
// and inline SVG charts, no scripts, fonts or images from elsewhere, every
// text escaped by htmltext as html/template would (docs/runtime.md says
// why there is no template). The page depends only on the review, so the
// same review gives the same bytes; the error is always nil.
func RenderHTML(rv Review) ([]byte, error) {
	p := newPageData(rv)
	var w htmltext.Writer
	w.Printf(`<!DOCTYPE html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>%s</title>
`, p.Title)
	w.Raw(reviewStyle)
	w.Printf(`
</head>
<body>
<main>
<header>
<h1>%s</h1>
<div class="meta">统计范围：%s受理的企业诉求 · 数据截至 %s</div>
</header>

<section class="kpis">`, p.Title, p.Range, p.AsOf)
	for _, k := range p.KPIs {
		w.Printf(`
<div class="kpi"><div class="label">%s</div><div class="value">%s</div><div class="note">%s</div></div>`, k.Label, k.Value, k.Note)
	}
	w.Raw(`
</section>



<h2>主要指标</h2>
`)
	p.Rates.write(&w)
	w.Raw(`

<h2>常见问题</h2>
`)
	if len(p.Categories.Bars) > 0 {
		p.Categories.write(&w)
	} else {
		w.Raw(`<p class="meta">本月无诉求。</p>`)
	}
	w.Raw(`

<h2>各部门办理情况</h2>
`)
	if len(p.Departments) > 0 {
		w.Raw("\n")
		p.Depts.write(&w)
		w.Raw(`
<p></p>
<table>
<thead><tr><th>部门</th><th>受理</th><th>按时答复</th><th>超期</th><th>办理中</th><th>回访</th><th>满意率</th></tr></thead>
<tbody>`)
		for _, d := range p.Departments {
			w.Printf(`
<tr><td>%s<br><span class="code">%s</span></td><td>%d</td><td>%d</td><td>%d</td><td>%d</td><td>%d</td><td>%s</td></tr>`,
				d.Name, d.Code, d.Received, d.OnTime, d.Overdue, d.Pending, d.Revisits, d.Satisfaction)
		}
		w.Raw(`
</tbody>
</table>
`)
	} else {
		w.Raw(`<p class="meta">本月无诉求。</p>`)
	}
	w.Raw(`

<h2>诉求来源</h2>
<div class="two">
<table>
<thead><tr><th>渠道</th><th>件数</th></tr></thead>
<tbody>`)
	writeCounts(&w, p.Channels)
	w.Raw(`</tbody>
</table>
<table>
<thead><tr><th>区县</th><th>件数</th></tr></thead>
<tbody>`)
	writeCounts(&w, p.Counties)
	w.Raw(`</tbody>
</table>
</div>

<h2>统计口径</h2>
<ul class="notes">
<li>统计对象：受理时间（按北京时间）在本月内的全部诉求，按数据截至时的办理记录统计。</li>
<li>按时交办率 = 交办期限（受理后2个工作日）届满时已由部门签收的诉求数 ÷ 交办期限已届满或已签收的诉求数。</li>
<li>按时答复率 = 首次答复不晚于答复期限（受理后10个工作日）的诉求数 ÷ 已按时答复或答复期限已届满的诉求数。</li>
<li>回访率 = 已回访的诉求数 ÷ 已答复的诉求数。</li>
<li>满意率 =（满意 + 基本满意）回访次数 ÷ 全部回访次数。</li>
<li>各部门按数据截至时的承办部门统计；“办理中”指答复期限未届满且尚未答复。</li>
</ul>
</main>
</body>
</html>
`)
	return w.Bytes(), nil
}

// writeCounts writes the rows of a channel or county table, a dash row
// for none.
func writeCounts(w *htmltext.Writer, counts []NamedCount) {
	if len(counts) == 0 {
		w.Raw(`<tr><td>—</td><td>0</td></tr>`)
	}
	for _, c := range counts {
		w.Printf(`<tr><td>%s</td><td>%d</td></tr>`, c.Name, c.Count)
	}
}

// write draws the chart as a figure with an inline SVG: per bar its
// label, its track, its parts and its value, then the legend.
func (c chart) write(w *htmltext.Writer) {
	w.Printf(`
<figure>
<figcaption>%s</figcaption>
<svg viewBox="0 0 720 %d" role="img" aria-label="%s">`, c.Title, c.Height, c.Title)
	for _, b := range c.Bars {
		w.Printf(`
<text x="0" y="%d" dy="15">%s</text>
<rect class="track" x="200" y="%d" width="420" height="20" rx="3"></rect>`, b.Y, b.Label, b.Y)
		for _, p := range b.Parts {
			w.Printf(`
<rect class="%s" x="%s" y="%d" width="%s" height="20" rx="3"><title>%s</title></rect>`, p.Class, p.X, p.Y, p.W, p.Title)
		}
		w.Printf(`
<text x="%s" y="%d" dy="15">%s</text>`, b.TextX, b.Y, b.Value)
	}
	for _, l := range c.Legend {
		w.Printf(`
<rect class="%s" x="%d" y="%d" width="14" height="14" transform="translate(0,-22)"></rect>
<text x="%d" y="%d" dx="20" dy="-10">%s</text>`, l.Class, l.X, c.Height, l.X, c.Height, l.Label)
	}
	w.Raw(`
</svg>
</figure>
`)
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

// reviewStyle is the page's CSS, inline: the page loads nothing.
const reviewStyle htmltext.Markup = `<style>
body { margin: 0; background: #f4f6f9; color: #1f2933; font-family: "PingFang SC", "Microsoft YaHei", "Noto Sans CJK SC", "Source Han Sans SC", sans-serif; line-height: 1.6; }
main { max-width: 960px; margin: 0 auto; padding: 32px 24px 48px; }
header { border-bottom: 3px solid #b71c1c; margin-bottom: 24px; padding-bottom: 12px; }
h1 { font-size: 26px; margin: 0 0 4px; color: #b71c1c; }
h2 { font-size: 19px; margin: 32px 0 12px; border-left: 4px solid #b71c1c; padding-left: 10px; }
.meta { color: #52606d; font-size: 14px; }
.kpis { display: grid; grid-template-columns: repeat(auto-fit, minmax(160px, 1fr)); gap: 12px; }
.kpi { background: #fff; border-radius: 8px; padding: 14px 16px; box-shadow: 0 1px 3px rgba(0,0,0,.08); }
.kpi .label { color: #52606d; font-size: 14px; }
.kpi .value { font-size: 28px; font-weight: 600; color: #102a43; }
.kpi .note { color: #7b8794; font-size: 12px; }
figure { margin: 0; background: #fff; border-radius: 8px; padding: 12px; box-shadow: 0 1px 3px rgba(0,0,0,.08); }
figcaption { font-weight: 600; margin-bottom: 4px; }
svg { width: 100%; height: auto; display: block; }
svg text { font-size: 14px; fill: #1f2933; }
.rate { fill: #1565c0; } .count { fill: #ef6c00; } .ontime { fill: #2e7d32; } .overdue { fill: #c62828; } .pending { fill: #9aa5b1; }
.track { fill: #eef1f5; }
table { width: 100%; border-collapse: collapse; background: #fff; border-radius: 8px; overflow: hidden; box-shadow: 0 1px 3px rgba(0,0,0,.08); font-size: 14px; }
th, td { padding: 8px 10px; border-bottom: 1px solid #e4e7eb; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f0f4f8; font-weight: 600; }
td.code { color: #7b8794; font-size: 12px; }
.two { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; }
.notes { font-size: 13px; color: #52606d; }
.notes li { margin-bottom: 4px; }
</style>`
