package appeal

import (
	"slices"
	"testing"
)

func TestNext(t *testing.T) {
	t.Parallel()
	statuses := []Status{Assigned, Accepted, Replied, Closed}
	type key struct {
		from Status
		a    Action
		s    Satisfaction
	}
	allowed := map[key]Status{
		{Assigned, Accept, ""}:                 Accepted,
		{Assigned, Return, ""}:                 Assigned,
		{Accepted, Return, ""}:                 Assigned,
		{Accepted, Reply, ""}:                  Replied,
		{Replied, Revisit, Satisfied}:          Closed,
		{Replied, Revisit, BasicallySatisfied}: Closed,
		{Replied, Revisit, Unsatisfied}:        Accepted,
	}
	for _, from := range statuses {
		for _, a := range []Action{Accept, Return, Reply, Revisit, Submit} {
			sats := []Satisfaction{""}
			if a == Revisit {
				sats = []Satisfaction{Satisfied, BasicallySatisfied, Unsatisfied}
			}
			for _, s := range sats {
				got, ok := Next(from, a, s)
				want, wantOK := allowed[key{from, a, s}]
				if !wantOK {
					want = from
				}
				if ok != wantOK || got != want {
					t.Errorf("Next(%s, %s, %q) = %s, %v; want %s, %v", from, a, s, got, ok, want, wantOK)
				}
			}
		}
	}
}

func TestLevelsFor(t *testing.T) {
	t.Parallel()
	cases := []struct {
		days int
		want []Level
	}{
		{-1, nil},
		{0, []Level{Reminder}},
		{1, []Level{Reminder}},
		{2, []Level{Reminder, Supervision}},
		{4, []Level{Reminder, Supervision}},
		{5, []Level{Reminder, Supervision, Exposure}},
		{30, []Level{Reminder, Supervision, Exposure}},
	}
	for _, c := range cases {
		if got := LevelsFor(c.days); !slices.Equal(got, c.want) {
			t.Errorf("LevelsFor(%d) = %v, want %v", c.days, got, c.want)
		}
	}
}

func TestOverdueKey(t *testing.T) {
	t.Parallel()
	if got, want := OverdueKey("A-1", StageReply, Supervision), "overdue/A-1/reply/supervision"; got != want {
		t.Fatalf("OverdueKey = %q, want %q", got, want)
	}
}

func TestSatisfactionValid(t *testing.T) {
	t.Parallel()
	for _, s := range []Satisfaction{Satisfied, BasicallySatisfied, Unsatisfied} {
		if !s.Valid() {
			t.Errorf("%s not valid", s)
		}
	}
	for _, s := range []Satisfaction{"", "happy", "Satisfied"} {
		if s.Valid() {
			t.Errorf("%q valid", s)
		}
	}
}
