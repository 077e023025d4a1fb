package main

import (
	"github.com/qinqing/qinqing/shared/contract"
	"github.com/qinqing/qinqing/shared/htmltext"
)

// The programme and the certificates are self-contained HTML (inline
// CSS, inline SVG, no external assets) with A4 print CSS, written by hand
// with every value escaped by htmltext: html/template would keep ~11 MB
// of unused code in the binary (docs/runtime.md, "Documents without
// templates"). testdata/golden holds the pages these writers produce.

// pageHead opens every document, up to its <title>.
const pageHead htmltext.Markup = `<!DOCTYPE html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
`

// programme is programme.html: the top 50, then one section per
// category with its winners.
func programme(v programmeView) []byte {
	var w htmltext.Writer
	w.Raw(pageHead)
	w.Printf(`<title>实干争先 · 湖州市%d年度颁奖典礼节目单</title>
`, v.Year)
	w.Raw(programmeStyle)
	w.Printf(`
</head>
<body>
<div class="page">
<header class="cover">
<p class="kicker">湖州企业家日</p>
<h1>实干争先</h1>
<p class="subtitle">湖州市%d年度颁奖典礼 · 节目单</p>
</header>

<section>
<h2>一、发布“湖州民企50强”</h2>
<p class="note">%d年度民营企业，按营业收入从高到低排列；营业收入相同者按纳税额从高到低，再按统一社会信用代码排列。</p>`, v.Year, v.Year)
	if len(v.Top50) > 0 {
		w.Raw(`
<table>
<thead><tr><th class="num">名次</th><th>企业名称</th><th>统一社会信用代码</th><th>县区</th><th class="num">营业收入<br>（万元）</th><th class="num">纳税额<br>（万元）</th><th class="num">从业<br>人数</th></tr></thead>
<tbody>`)
		for _, e := range v.Top50 {
			w.Printf(`
<tr><td class="num">%d</td><td class="ename">%s</td><td class="code">%s</td><td class="county">%s</td><td class="num">%s</td><td class="num">%s</td><td class="num">%d</td></tr>`,
				e.Rank, e.Name, e.USCC, e.County, e.Revenue, e.Tax, e.Employees)
		}
		w.Raw(`
</tbody>
</table>`)
	} else {
		w.Raw(`
<p class="empty">本年度暂无上榜企业。</p>`)
	}
	w.Raw(`
</section>
`)
	for _, s := range v.Sections {
		w.Printf(`
<section>
<h2>%s、颁发“%s”奖（%s）</h2>`, s.Number, s.Title, s.Honoree)
		if s.Category == contract.AwardGoodCase {
			w.Raw(`
<p class="note">由“贡献者”企业家为获奖部门颁奖。</p>`)
		}
		if len(s.Winners) > 0 {
			w.Raw(`
<ol class="winners">`)
			for _, x := range s.Winners {
				w.Printf(`
<li>
<span class="rank">%d</span><span class="name">%s</span>`, x.Rank, x.Name)
				if x.Detail != "" {
					w.Printf(`<div class="detail">%s</div>`, x.Detail)
				}
				if x.Citation != "" {
					w.Printf(`<p class="citation">%s</p>`, x.Citation)
				}
				w.Printf(`
<div class="meta">推荐单位：%s</div>`, x.Nominator)
				if x.Presenter != "" {
					w.Printf(`<p class="presenter">颁奖嘉宾：%s</p>`, x.Presenter)
				}
				w.Raw(`
</li>`)
			}
			w.Raw(`
</ol>`)
		} else {
			w.Raw(`
<p class="empty">本年度暂无获奖者。</p>`)
		}
		w.Raw(`
</section>
`)
	}
	w.Printf(`
<footer>实干争先 · 湖州市%d年度</footer>
</div>
</body>
</html>
`, v.Year)
	return w.Bytes()
}

// certificate is one winner's certificate, A4 landscape.
func certificate(v winnerView) []byte {
	var w htmltext.Writer
	w.Raw(pageHead)
	w.Printf(`<title>荣誉证书 · 实干争先%d年度“%s” · %s</title>
`, v.Year, v.Title, v.Name)
	w.Raw(certificateStyle)
	w.Printf(`
</head>
<body>
<div class="sheet">
<div class="frame">
<h1>荣誉证书</h1>
<p class="award">实干争先 · 湖州市%d年度“%s”</p>
<p class="recipient">%s：</p>`, v.Year, v.Title, v.Recipient)
	if v.Category == contract.AwardGoodCase {
		w.Printf(`
<p class="text">你单位的“<span class="name">%s</span>”在湖州市%d年度“实干争先”评选中被评为“%s”。特发此证，以资鼓励。</p>`, v.Name, v.Year, v.Title)
	} else {
		w.Printf(`
<p class="text">在湖州市%d年度“实干争先”评选中，被评为“%s”。特发此证，以资鼓励。</p>`, v.Year, v.Title)
		if v.Detail != "" {
			w.Printf(`
<p class="citation">%s</p>`, v.Detail)
		}
	}
	if v.Citation != "" {
		w.Printf(`
<p class="citation">%s</p>`, v.Citation)
	}
	if v.Presenter != "" {
		w.Printf(`
<p class="presenter">颁奖嘉宾：%s</p>`, v.Presenter)
	}
	w.Printf(`
<div class="footer">
<p class="serial">证书编号：%s</p>
<div class="issuer">
<svg class="seal" viewBox="0 0 100 100" aria-hidden="true"><circle cx="50" cy="50" r="46" fill="none" stroke="#c8102e" stroke-width="3"/><polygon points="50,22 56.5,41 76.6,41 60.3,52.8 66.5,71.8 50,60 33.5,71.8 39.7,52.8 23.4,41 43.5,41" fill="#c8102e"/><text x="50" y="88" text-anchor="middle" font-size="9" fill="#c8102e">实干争先</text></svg>
湖州市人民政府<br>%d年度
</div>
</div>
</div>
</div>
</body>
</html>
`, v.Serial, v.Year)
	return w.Bytes()
}

// programmeStyle is the programme's print CSS: A4 portrait.
const programmeStyle htmltext.Markup = `<style>
@page { size: A4 portrait; margin: 18mm 16mm 20mm; }
* { box-sizing: border-box; }
html { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
body {
  margin: 0; color: #2b1d0e; background: #fff;
  font-family: "Songti SC", "STSong", "SimSun", "Noto Serif CJK SC", "Source Han Serif SC", serif;
  font-size: 11pt; line-height: 1.6;
}
.page { max-width: 178mm; margin: 0 auto; }
.cover { text-align: center; padding: 16mm 0 10mm; border-bottom: 1.2mm solid #b3261e; margin-bottom: 8mm; page-break-after: avoid; }
.cover .kicker { margin: 0; letter-spacing: .4em; color: #8a6d3b; font-size: 12pt; }
.cover h1 { margin: 4mm 0 2mm; font-size: 40pt; letter-spacing: .35em; color: #b3261e; font-weight: 700; }
.cover .subtitle { margin: 0; font-size: 16pt; letter-spacing: .15em; }
h2 { font-size: 15pt; color: #b3261e; border-left: 2mm solid #b3261e; padding-left: 3mm; margin: 9mm 0 3mm; break-after: avoid; page-break-after: avoid; }
.note { margin: 0 0 3mm; color: #6b5a43; }
.empty { color: #6b5a43; font-style: italic; }
table { width: 100%; border-collapse: collapse; font-size: 9.5pt; }
thead { display: table-header-group; }
th, td { border: .3mm solid #d8c7a5; padding: 1.2mm 2mm; text-align: left; vertical-align: top; }
th { background: #f6eedd; font-weight: 700; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.code { font-family: "Courier New", monospace; font-size: 8.5pt; white-space: nowrap; }
td.county { white-space: nowrap; }
td.ename { min-width: 40mm; }
tr { break-inside: avoid; page-break-inside: avoid; }
ol.winners { list-style: none; margin: 0; padding: 0; }
ol.winners li { border: .3mm solid #d8c7a5; border-radius: 1.5mm; padding: 3mm 4mm; margin-bottom: 3mm; break-inside: avoid; page-break-inside: avoid; }
.rank { display: inline-block; min-width: 9mm; color: #fff; background: #b3261e; border-radius: 1mm; text-align: center; margin-right: 2mm; font-size: 9pt; }
.name { font-size: 13pt; font-weight: 700; }
.detail, .meta { color: #6b5a43; font-size: 9.5pt; }
.citation { margin: 1.5mm 0 0; }
.presenter { margin: 1.5mm 0 0; font-weight: 700; }
footer { margin-top: 10mm; text-align: center; color: #8a6d3b; font-size: 9pt; letter-spacing: .2em; }
@media screen { body { background: #f3efe6; } .page { background: #fff; padding: 12mm 16mm; margin: 8mm auto; } }
</style>`

// certificateStyle is the certificate's print CSS: A4 landscape, one sheet.
const certificateStyle htmltext.Markup = `<style>
@page { size: A4 landscape; margin: 0; }
* { box-sizing: border-box; }
html { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
html, body { margin: 0; padding: 0; }
body {
  color: #3a2a12; background: #fff;
  font-family: "Songti SC", "STSong", "SimSun", "Noto Serif CJK SC", "Source Han Serif SC", serif;
}
.sheet { width: 297mm; height: 210mm; padding: 10mm; margin: 0 auto; overflow: hidden; page-break-after: avoid; break-inside: avoid; }
.frame {
  position: relative; height: 100%; padding: 14mm 24mm 12mm;
  border: 2.5mm double #b8860b; outline: .6mm solid #b3261e; outline-offset: -5mm;
  background: linear-gradient(#fffdf7, #fbf3df);
  display: flex; flex-direction: column;
}
h1 { margin: 0; text-align: center; font-size: 44pt; letter-spacing: .6em; text-indent: .6em; color: #b3261e; font-weight: 700; }
.award { margin: 2mm 0 0; text-align: center; font-size: 14pt; letter-spacing: .3em; color: #8a6d3b; }
.recipient { margin: 12mm 0 4mm; font-size: 22pt; font-weight: 700; }
.text { margin: 0; font-size: 17pt; line-height: 2; text-indent: 2em; }
.name { font-weight: 700; }
.citation { margin: 3mm 0 0; font-size: 12pt; line-height: 1.8; text-indent: 2em; color: #5a4a32; }
.presenter { margin: 3mm 0 0; font-size: 13pt; text-indent: 2em; }
.footer { margin-top: auto; display: flex; justify-content: space-between; align-items: flex-end; }
.serial { margin: 0; font-size: 10pt; color: #8a6d3b; font-family: "Courier New", monospace; }
.issuer { position: relative; margin: 0; min-width: 70mm; text-align: center; font-size: 16pt; line-height: 1.8; }
.seal { position: absolute; left: 50%; top: 50%; width: 40mm; height: 40mm; margin: -20mm 0 0 -20mm; opacity: .85; }
@media screen { body { background: #e9e4d8; } .sheet { margin: 8mm auto; background: #fff; box-shadow: 0 1mm 4mm rgba(0,0,0,.2); } }
</style>`
