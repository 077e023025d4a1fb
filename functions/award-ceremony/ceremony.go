package main

import (
	"cmp"
	"context"
	"path"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/qinqing/qinqing/shared/contract"
	"github.com/qinqing/qinqing/shared/runtime"
)

// TopSize is the length of the list of top private enterprises (湖州民企50强).
const TopSize = 50

// Ranked is one enterprise of the top 50.
type Ranked struct {
	Rank       int
	USCC       string
	Name       string
	County     string
	RevenueFen int64
	TaxFen     int64
	Employees  int64
}

// candidate is a scored nomination: its judges' scores sum to sum
// hundredths of a point over count scores.
type candidate struct {
	NominationID string
	Category     string
	Name         string
	USCC         string
	County       string
	Department   string
	NominatedBy  string
	Citation     string
	submittedAt  time.Time
	sum, count   int64
}

// Winner is a nomination that won its category. Presenter is set for
// good_case winners: the contributor winner who presents the award.
type Winner struct {
	candidate
	Rank      int
	Presenter *Winner
}

// Ceremony is the year's result, from which the reply and every document
// are derived.
type Ceremony struct {
	Year    int
	Top50   []Ranked
	Winners []Winner // in ceremony order: category, then rank
}

// ceremony runs the annual job for the year of the event time (business
// time zone): it ranks, names the winners, writes the documents under
// fixed keys (a rerun or a retry overwrites them with the same bytes when
// nothing changed) and replies with the result.
func (f *Function) ceremony(ctx context.Context, tx pgx.Tx, m runtime.Meta) (runtime.Result, error) {
	year := m.Time.In(f.loc).Year()
	if err := lockCeremonyYear(ctx, tx, year); err != nil {
		return runtime.Result{}, err
	}
	top, err := topEnterprises(ctx, tx, year, TopSize)
	if err != nil {
		return runtime.Result{}, err
	}
	cands, err := scoredNominations(ctx, tx, year)
	if err != nil {
		return runtime.Result{}, err
	}
	c := Ceremony{Year: year, Top50: top, Winners: rankWinners(cands, f.winners)}
	docs, err := c.Documents()
	if err != nil {
		return runtime.Result{}, err
	}
	keys, err := f.publish(ctx, c.certificatePrefix(), docs)
	if err != nil {
		return runtime.Result{}, err
	}
	result := c.Published(keys)
	if err := saveCeremony(ctx, tx, m, year, result); err != nil {
		return runtime.Result{}, err
	}
	return runtime.Reply(contract.TypeCeremonyPublished, result), nil
}

// rankWinners orders each category's scored nominations by mean score,
// highest first, ties by the earlier nomination (event time, then
// nomination id), keeps the first perCategory of each, and pairs each
// good_case winner with a contributor winner as presenter in rank order,
// cycling when there are fewer contributors.
func rankWinners(cands []candidate, perCategory int) []Winner {
	order := map[string]int{}
	for i, c := range contract.AwardCategories {
		order[c] = i
	}
	cands = slices.Clone(cands)
	slices.SortFunc(cands, func(a, b candidate) int {
		if c := cmp.Compare(order[a.Category], order[b.Category]); c != 0 {
			return c
		}
		// Compare the means exactly: a.sum/a.count vs b.sum/b.count.
		if c := cmp.Compare(b.sum*a.count, a.sum*b.count); c != 0 {
			return c
		}
		if c := a.submittedAt.Compare(b.submittedAt); c != 0 {
			return c
		}
		return cmp.Compare(a.NominationID, b.NominationID)
	})
	var winners []Winner
	rank := map[string]int{}
	for _, c := range cands {
		if rank[c.Category] == perCategory {
			continue
		}
		rank[c.Category]++
		winners = append(winners, Winner{candidate: c, Rank: rank[c.Category]})
	}
	var contributors []int
	for i, w := range winners {
		if w.Category == contract.AwardContributor {
			contributors = append(contributors, i)
		}
	}
	if len(contributors) > 0 {
		for i := range winners {
			if w := &winners[i]; w.Category == contract.AwardGoodCase {
				w.Presenter = &winners[contributors[(w.Rank-1)%len(contributors)]]
			}
		}
	}
	return winners
}

// certificatePrefix is the folder of the year's certificates.
func (c Ceremony) certificatePrefix() string {
	return path.Join("awards", itoa(c.Year), "certificates") + "/"
}

// Published is the reply for the ceremony whose documents are keys.
func (c Ceremony) Published(keys []string) contract.CeremonyPublished {
	p := contract.CeremonyPublished{Year: c.Year, Top50: make([]contract.TopEntry, len(c.Top50)), Winners: make([]contract.WinnerEntry, len(c.Winners)), Documents: keys}
	for i, e := range c.Top50 {
		p.Top50[i] = contract.TopEntry{Rank: e.Rank, USCC: e.USCC, Name: e.Name}
	}
	for i, w := range c.Winners {
		p.Winners[i] = contract.WinnerEntry{Category: w.Category, Rank: w.Rank, NominationID: w.NominationID, Name: w.Name}
		if w.Presenter != nil {
			p.Winners[i].Presenter = w.Presenter.Name
		}
	}
	return p
}
