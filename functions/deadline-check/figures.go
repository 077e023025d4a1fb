package main

import (
	"math"
	"sort"
	"strings"
	"time"

	"github.com/qinqing/qinqing/shared/appeal"
	"github.com/qinqing/qinqing/shared/contract"
)

// Review is the monthly review (营商环境月评议), the content of
// review.json. Its cohort is the appeals received in the month (business
// time zone); every figure describes them as they stood at AsOf, the
// event time of the first run for the month. docs/appeals.md gives each
// rate's numerator and denominator.
type Review struct {
	Period             string                   `json:"period"`
	From               time.Time                `json:"from"`
	To                 time.Time                `json:"to"`
	AsOf               time.Time                `json:"asOf"`
	Received           int                      `json:"received"`
	Assign             StageFigures             `json:"assign"`
	Reply              StageFigures             `json:"reply"`
	Replied            int                      `json:"replied"`
	Revisited          int                      `json:"revisited"`
	Revisits           RevisitFigures           `json:"revisits"`
	AssignedOnTimeRate float64                  `json:"assignedOnTimeRate"`
	RepliedOnTimeRate  float64                  `json:"repliedOnTimeRate"`
	RevisitRate        float64                  `json:"revisitRate"`
	SatisfactionRate   float64                  `json:"satisfactionRate"`
	TopCategories      []contract.CategoryCount `json:"topCategories"`
	Departments        []DepartmentFigures      `json:"departments"`
	Channels           []NamedCount             `json:"channels"`
	Counties           []NamedCount             `json:"counties"`
}

// StageFigures splits the cohort by how a deadline went: met in time,
// missed, or not decided yet at AsOf (due later and not met so far).
type StageFigures struct {
	OnTime  int `json:"onTime"`
	Late    int `json:"late"`
	Pending int `json:"pending"`
}

// RevisitFigures counts the follow-up visits (回访) by verdict; an appeal
// reopened after an unsatisfied visit and visited again counts twice.
type RevisitFigures struct {
	Total              int `json:"total"`
	Satisfied          int `json:"satisfied"`
	BasicallySatisfied int `json:"basicallySatisfied"`
	Unsatisfied        int `json:"unsatisfied"`
}

// NamedCount is a count per channel or county.
type NamedCount struct {
	Name  string `json:"name"`
	Count int    `json:"count"`
}

// DepartmentFigures is one row of the per-department table; an appeal
// counts for the department it was assigned to at AsOf. OnTime, Overdue
// and Pending are its reply stage.
type DepartmentFigures struct {
	Department       string  `json:"department"`
	Received         int     `json:"received"`
	OnTime           int     `json:"onTime"`
	Overdue          int     `json:"overdue"`
	Pending          int     `json:"pending"`
	Revisits         int     `json:"revisits"`
	Satisfied        int     `json:"satisfied"`
	SatisfactionRate float64 `json:"satisfactionRate"`
}

// topCategories is how many categories the review names.
const topCategories = 5

// record is one appeal of the cohort with its history up to AsOf.
type record struct {
	id, category, channel, county string
	received, assignDue, replyDue time.Time // replyDue: the first promise, 10 working days after receipt
	steps                         []transition
}

// transition is one history row.
type transition struct {
	at           time.Time
	action       appeal.Action
	to           appeal.Status
	department   string
	satisfaction appeal.Satisfaction
}

// outcome is how a deadline went as of a time.
type outcome int

const (
	pending outcome = iota
	onTime
	late
)

// stateAt is the status and assignee after the last transition at or
// before t.
func (r record) stateAt(t time.Time) (appeal.Status, string) {
	var s appeal.Status
	var d string
	for _, st := range r.steps {
		if st.at.After(t) {
			break
		}
		s, d = st.to, st.department
	}
	return s, d
}

// assign: on time when a department had signed for the appeal (any status
// but assigned) at assignDue; late when it had not and assignDue has
// passed; otherwise on time if signed for by asOf, else pending.
func (r record) assign(asOf time.Time) outcome {
	if r.assignDue.Before(asOf) {
		if s, _ := r.stateAt(r.assignDue); s != appeal.Assigned {
			return onTime
		}
		return late
	}
	if s, _ := r.stateAt(asOf); s != appeal.Assigned {
		return onTime
	}
	return pending
}

// reply: on time when the first reply came by the first replyDue; late
// when it did not and that due time has passed by asOf; else pending.
func (r record) reply(asOf time.Time) outcome {
	for _, st := range r.steps {
		if st.action == appeal.Reply {
			if !st.at.After(r.replyDue) {
				return onTime
			}
			break
		}
	}
	if r.replyDue.Before(asOf) {
		return late
	}
	return pending
}

// Figures computes the review of the cohort as of asOf. It is pure: the
// same records give the same review.
func Figures(recs []record, period string, from, to, asOf time.Time) Review {
	rv := Review{Period: period, From: from, To: to, AsOf: asOf, Received: len(recs),
		TopCategories: []contract.CategoryCount{}, Departments: []DepartmentFigures{}, Channels: []NamedCount{}, Counties: []NamedCount{}}
	categories, channels, counties := map[string]int{}, map[string]int{}, map[string]int{}
	depts := map[string]*DepartmentFigures{}
	for _, r := range recs {
		categories[strings.ToLower(strings.TrimSpace(r.category))]++
		channels[r.channel]++
		counties[r.county]++
		_, dept := r.stateAt(asOf)
		d := depts[dept]
		if d == nil {
			d = &DepartmentFigures{Department: dept}
			depts[dept] = d
		}
		d.Received++
		count(&rv.Assign, r.assign(asOf))
		switch o := r.reply(asOf); o {
		case onTime:
			d.OnTime++
			count(&rv.Reply, o)
		case late:
			d.Overdue++
			count(&rv.Reply, o)
		default:
			d.Pending++
			count(&rv.Reply, o)
		}
		replied, revisited := false, false
		for _, st := range r.steps {
			switch st.action {
			case appeal.Reply:
				replied = true
			case appeal.Revisit:
				revisited = true
				rv.Revisits.Total++
				d.Revisits++
				switch st.satisfaction {
				case appeal.Satisfied:
					rv.Revisits.Satisfied++
					d.Satisfied++
				case appeal.BasicallySatisfied:
					rv.Revisits.BasicallySatisfied++
					d.Satisfied++
				default:
					rv.Revisits.Unsatisfied++
				}
			}
		}
		if replied {
			rv.Replied++
			if revisited {
				rv.Revisited++
			}
		}
	}
	rv.AssignedOnTimeRate = rate(rv.Assign.OnTime, rv.Assign.OnTime+rv.Assign.Late)
	rv.RepliedOnTimeRate = rate(rv.Reply.OnTime, rv.Reply.OnTime+rv.Reply.Late)
	rv.RevisitRate = rate(rv.Revisited, rv.Replied)
	rv.SatisfactionRate = rate(rv.Revisits.Satisfied+rv.Revisits.BasicallySatisfied, rv.Revisits.Total)
	for _, c := range ranked(categories) {
		if len(rv.TopCategories) == topCategories {
			break
		}
		rv.TopCategories = append(rv.TopCategories, contract.CategoryCount{Category: c.Name, Count: c.Count})
	}
	rv.Channels, rv.Counties = ranked(channels), ranked(counties)
	for _, d := range depts {
		d.SatisfactionRate = rate(d.Satisfied, d.Revisits)
		rv.Departments = append(rv.Departments, *d)
	}
	sort.Slice(rv.Departments, func(i, j int) bool {
		a, b := rv.Departments[i], rv.Departments[j]
		if a.Received != b.Received {
			return a.Received > b.Received
		}
		return a.Department < b.Department
	})
	return rv
}

func count(s *StageFigures, o outcome) {
	switch o {
	case onTime:
		s.OnTime++
	case late:
		s.Late++
	default:
		s.Pending++
	}
}

// rate is n/d rounded to 4 decimal places, 0 when d is 0.
func rate(n, d int) float64 {
	if d == 0 {
		return 0
	}
	return math.Round(float64(n)/float64(d)*10000) / 10000
}

// ranked orders counts by count descending, then name.
func ranked(m map[string]int) []NamedCount {
	out := make([]NamedCount, 0, len(m))
	for k, v := range m {
		out = append(out, NamedCount{Name: k, Count: v})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Name < out[j].Name
	})
	return out
}
