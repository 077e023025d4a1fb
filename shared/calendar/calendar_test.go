package calendar

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/qinqing/qinqing/shared/postgres"
	"github.com/qinqing/qinqing/shared/postgres/pgtest"
	"github.com/qinqing/qinqing/shared/testkit"
)

func d(s string) Date {
	v, err := ParseDate(s)
	if err != nil {
		panic(err)
	}
	return v
}

// cal2026 is the National Day 2026 arrangement: 1–7 October off, Sunday
// 20 September and Saturday 10 October worked.
func cal2026() *Calendar {
	m := map[Date]Kind{d("2026-09-20"): Workday, d("2026-10-10"): Workday}
	for day := d("2026-10-01"); day.Before(d("2026-10-08")); day = day.AddDays(1) {
		m[day] = Holiday
	}
	return New(testkit.Shanghai, m)
}

func TestIsWorkingDay(t *testing.T) {
	t.Parallel()
	c := cal2026()
	for day, want := range map[string]bool{
		"2026-09-18": true,  // Friday
		"2026-09-19": false, // Saturday
		"2026-09-20": true,  // Sunday, make-up working day
		"2026-10-01": false, // Thursday, holiday
		"2026-10-08": true,  // Thursday after the holiday
		"2026-10-10": true,  // Saturday, make-up working day
		"2026-10-11": false, // Sunday
	} {
		if got := c.IsWorkingDay(d(day)); got != want {
			t.Errorf("IsWorkingDay(%s) = %v, want %v", day, got, want)
		}
	}
}

func TestDueAfter(t *testing.T) {
	t.Parallel()
	c := cal2026()
	cases := []struct {
		at   string
		n    int
		want string
	}{
		// Tuesday 29 Sep, 2 working days: Wed 30 Sep, then the holiday,
		// then Thu 8 Oct.
		{"2026-09-29T10:00:00+08:00", 2, "2026-10-08T23:59:59+08:00"},
		// Friday 9 Oct evening, 1 working day: Saturday 10 Oct (调休).
		{"2026-10-09T22:00:00+08:00", 1, "2026-10-10T23:59:59+08:00"},
		// The date is taken in the business time zone: 17:30 UTC on 18 Sep
		// is already Saturday 19 Sep in Huzhou, so the next working day is
		// the make-up Sunday 20 Sep.
		{"2026-09-18T17:30:00Z", 1, "2026-09-20T23:59:59+08:00"},
		// 10 working days from Friday 25 Sep (2 weeks, across the holiday):
		// 28, 29, 30 Sep, 8, 9, 10 (Sat), 12, 13, 14, 15 Oct.
		{"2026-09-25T09:00:00+08:00", 10, "2026-10-15T23:59:59+08:00"},
	}
	for _, tc := range cases {
		at, _ := time.Parse(time.RFC3339, tc.at)
		want, _ := time.Parse(time.RFC3339, tc.want)
		if got := c.DueAfter(at, tc.n); !got.Equal(want) {
			t.Errorf("DueAfter(%s, %d) = %s, want %s", tc.at, tc.n, got.Format(time.RFC3339), tc.want)
		}
	}
}

func TestWorkingDaysBetween(t *testing.T) {
	t.Parallel()
	c := cal2026()
	cases := []struct {
		a, b string
		want int
	}{
		{"2026-09-30", "2026-09-30", 0},
		{"2026-09-30", "2026-10-07", 0}, // all holiday
		{"2026-09-30", "2026-10-08", 1},
		{"2026-09-30", "2026-10-12", 4}, // 8, 9, 10 (Saturday, worked), 12
		{"2026-10-12", "2026-10-09", 0},
	}
	for _, tc := range cases {
		if got := c.WorkingDaysBetween(d(tc.a), d(tc.b)); got != tc.want {
			t.Errorf("WorkingDaysBetween(%s, %s) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestSeededAndPublish(t *testing.T) {
	t.Parallel()
	pool := pgtest.Pool(t)
	ctx := context.Background()
	c, err := Load(ctx, pool, testkit.Shanghai)
	if err != nil {
		t.Fatal(err)
	}
	// Seeded 2026: Spring Festival 15–23 Feb off, Sat 14 and Sat 28 Feb worked.
	for day, want := range map[string]bool{"2026-02-13": true, "2026-02-14": true, "2026-02-16": false, "2026-02-23": false, "2026-02-24": true, "2026-02-28": true, "2025-10-11": true, "2025-10-08": false} {
		if got := c.IsWorkingDay(d(day)); got != want {
			t.Errorf("seeded IsWorkingDay(%s) = %v, want %v", day, got, want)
		}
	}
	// A later publication for the same year replaces the earlier one.
	publish := func(holidays, workdays []Date) {
		err := postgres.InTx(ctx, pool, func(tx pgx.Tx) error {
			return Publish(ctx, tx, 2027, holidays, workdays, "test")
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	publish([]Date{d("2027-01-01"), d("2027-02-08")}, []Date{d("2027-02-07")})
	publish([]Date{d("2027-01-01")}, nil)
	c, err = Load(ctx, pool, testkit.Shanghai)
	if err != nil {
		t.Fatal(err)
	}
	if !c.IsWorkingDay(d("2027-02-08")) || c.IsWorkingDay(d("2027-02-07")) || c.IsWorkingDay(d("2027-01-01")) {
		t.Fatalf("2027 after republication: %v", c.Marked)
	}
	if c.IsWorkingDay(d("2026-02-16")) {
		t.Fatal("publishing 2027 changed 2026")
	}
}

// The seeded 2025 and 2026 arrangements are exactly the State Council's
// notices: 国办发明电〔2024〕12号 (12 November 2024) and 国办发明电〔2025〕7号
// (4 November 2025). Every day of both years is checked against the
// notices' holiday ranges and make-up working days (上班).
func TestSeededYearsMatchNotices(t *testing.T) {
	t.Parallel()
	c, err := Load(context.Background(), pgtest.Pool(t), testkit.Shanghai)
	if err != nil {
		t.Fatal(err)
	}
	type span struct{ from, to string }
	notices := map[int]struct {
		off      []span
		workdays []string
	}{
		2025: {
			off: []span{
				{"2025-01-01", "2025-01-01"}, // 元旦
				{"2025-01-28", "2025-02-04"}, // 春节
				{"2025-04-04", "2025-04-06"}, // 清明节
				{"2025-05-01", "2025-05-05"}, // 劳动节
				{"2025-05-31", "2025-06-02"}, // 端午节
				{"2025-10-01", "2025-10-08"}, // 国庆节、中秋节
			},
			workdays: []string{"2025-01-26", "2025-02-08", "2025-04-27", "2025-09-28", "2025-10-11"},
		},
		2026: {
			off: []span{
				{"2026-01-01", "2026-01-03"}, // 元旦
				{"2026-02-15", "2026-02-23"}, // 春节
				{"2026-04-04", "2026-04-06"}, // 清明节
				{"2026-05-01", "2026-05-05"}, // 劳动节
				{"2026-06-19", "2026-06-21"}, // 端午节
				{"2026-09-25", "2026-09-27"}, // 中秋节
				{"2026-10-01", "2026-10-07"}, // 国庆节
			},
			workdays: []string{"2026-01-04", "2026-02-14", "2026-02-28", "2026-05-09", "2026-09-20", "2026-10-10"},
		},
	}
	for year, n := range notices {
		off, worked := map[Date]bool{}, map[Date]bool{}
		for _, s := range n.off {
			for day := d(s.from); !d(s.to).Before(day); day = day.AddDays(1) {
				off[day] = true
			}
		}
		for _, s := range n.workdays {
			worked[d(s)] = true
		}
		working := 0
		for day := (Date{year, time.January, 1}); day.Year == year; day = day.AddDays(1) {
			wd := day.Weekday()
			want := worked[day] || !off[day] && wd != time.Saturday && wd != time.Sunday
			if got := c.IsWorkingDay(day); got != want {
				t.Errorf("seeded IsWorkingDay(%s, %s) = %v, want %v", day, wd, got, want)
			}
			if want {
				working++
			}
		}
		// A cross-check: both years have 261 weekdays; less the weekday
		// holidays (18 in 2025, 19 in 2026), plus the make-up days (5, 6),
		// that is 248 working days.
		if working != 248 {
			t.Errorf("%d: %d working days by the notice, want 248", year, working)
		}
	}
}
