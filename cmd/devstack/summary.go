package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
)

// summarize prints what the week left behind, domain by domain, reading
// the database (each part only when its schema exists).
func summarize(ctx context.Context, w io.Writer, pool *pgxpool.Pool, b *broker) {
	fmt.Fprintln(w, "═══ What happened ═══")
	if exists(ctx, pool, "forum.forums") {
		forumSummary(ctx, w, pool)
	}
	counts := map[string]int{}
	failed, missing := 0, map[string]bool{}
	for _, o := range b.observedSince(0) {
		counts[o.Event.Type()]++
		if len(o.Failed) > 0 {
			failed++
		}
		for _, m := range o.Missing {
			missing[m] = true
		}
	}
	types := make([]string, 0, len(counts))
	for t := range counts {
		types = append(types, t)
	}
	sort.Strings(types)
	fmt.Fprintln(w, "\nEvents through the broker:")
	for _, t := range types {
		fmt.Fprintf(w, "  %4d  %s\n", counts[t], t)
	}
	if failed > 0 {
		fmt.Fprintf(w, "  %d events failed delivery after retries (kept by the dead-letter function)\n", failed)
	}
	for m := range missing {
		fmt.Fprintf(w, "  (no %s built yet: events for it were not delivered)\n", m)
	}
}

func exists(ctx context.Context, pool *pgxpool.Pool, table string) bool {
	var ok bool
	_ = pool.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, table).Scan(&ok)
	return ok
}

func forumSummary(ctx context.Context, w io.Writer, pool *pgxpool.Pool) {
	rows, err := pool.Query(ctx, `SELECT f.forum_id, f.theme, f.forum_date::text, f.capacity, coalesce(f.roster_key, ''),
			s.status, s.mode, s.enterprise_name, jsonb_array_length(s.problems)
		FROM forum.forums f LEFT JOIN forum.signups s USING (forum_id)
		ORDER BY f.forum_id, CASE s.status WHEN 'confirmed' THEN 0 WHEN 'waitlisted' THEN 1 ELSE 2 END, s.seq`)
	if err != nil {
		fmt.Fprintln(w, "forum summary:", err)
		return
	}
	defer rows.Close()
	type group struct {
		theme, date, roster string
		capacity            int
		byStatus            map[string][]string
		problems            int
	}
	var order []string
	forums := map[string]*group{}
	for rows.Next() {
		var id, theme, date, roster string
		var capacity int
		var status, mode, name *string
		var problems *int
		if err := rows.Scan(&id, &theme, &date, &capacity, &roster, &status, &mode, &name, &problems); err != nil {
			fmt.Fprintln(w, "forum summary:", err)
			return
		}
		g := forums[id]
		if g == nil {
			g = &group{theme: theme, date: date, roster: roster, capacity: capacity, byStatus: map[string][]string{}}
			forums[id] = g
			order = append(order, id)
		}
		if status != nil {
			label := *name
			if *mode == "nominated" {
				label += "(推荐)"
			}
			g.byStatus[*status] = append(g.byStatus[*status], label)
			g.problems += *problems
		}
	}
	for _, id := range order {
		g := forums[id]
		fmt.Fprintf(w, "\nForum %s 「%s」 on %s, %d seats\n", id, g.theme, g.date, g.capacity)
		for _, st := range []string{"confirmed", "waitlisted", "cancelled"} {
			if names := g.byStatus[st]; len(names) > 0 {
				fmt.Fprintf(w, "  %-10s %2d: %s\n", st, len(names), strings.Join(names, "、"))
			}
		}
		if g.roster != "" {
			fmt.Fprintf(w, "  roster     s3://qinqing/%s\n", g.roster)
		} else {
			fmt.Fprintf(w, "  roster     not yet (signups still open)\n")
		}
		fmt.Fprintf(w, "  appeals raised from problems brought to the forum: %d\n", g.problems)
	}
}
