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
	for _, part := range []struct {
		table, title, query string
	}{
		{"appeal.appeals", "Appeals by status (closed loop: assigned → accepted → replied → closed)",
			`SELECT status || ' ' || count(*) FILTER (WHERE channel = 'forum') || ' from the forum, ' ||
				count(*) FILTER (WHERE channel <> 'forum') || ' from portals, hotline and visits'
			 FROM appeal.appeals GROUP BY status ORDER BY array_position(ARRAY['assigned','accepted','replied','closed'], status)`},
		{"appeal.overdue_announcements", "Escalations announced (督办 ladder)",
			`SELECT appeal_id || '  ' || stage || '/' || level || '  ' || department || '  ' || working_days_overdue || ' working days overdue'
			 FROM appeal.overdue_announcements ORDER BY appeal_id, due_at, array_position(ARRAY['reminder','supervision','exposure'], level)`},
		{"subsidy.disbursement_status", "Subsidies (政策一键兑)",
			`SELECT policy_id || '  ' || uscc || '  ¥' || to_char(amount_fen / 100.0, 'FM999,999,999,990.00') || '  ' || status ||
				'  due ' || to_char(due_at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM-DD')
			 FROM subsidy.disbursement_status ORDER BY approved_at, disbursement_id`},
		{"recycling.trades", "Waste-battery trades on record (HW31 900-052-31)",
			`SELECT count(*) || ' trades, ' || coalesce(sum(battery_sets), 0) || ' battery sets, ' ||
				to_char(coalesce(sum(weight_g), 0) / 1000.0, 'FM999,999,990.000') || ' kg, ¥' ||
				to_char(coalesce(sum(amount_fen), 0) / 100.0, 'FM999,999,990.00')
			 FROM recycling.trades`},
		{"deadletter.dead_letters", "Dead letters (go run ./cmd/qinqing deadletters list)",
			`SELECT status || '  ' || type || ' ' || event_id || '  answered ' || coalesce(error_code::text, '?') ||
				'  ' || left(coalesce(error_data, ''), 120)
			 FROM deadletter.dead_letters ORDER BY received_at, id`},
		{"award.ceremonies", "Award ceremonies (实干争先)",
			`SELECT year || ': top 3 of 湖州民企50强: ' ||
				(SELECT string_agg(e->>'name', '、' ORDER BY (e->>'rank')::int) FROM jsonb_array_elements(result->'top50') e WHERE (e->>'rank')::int <= 3) ||
				'; ' || jsonb_array_length(result->'winners') || ' winners, ' || jsonb_array_length(result->'documents') || ' documents'
			 FROM award.ceremonies ORDER BY year`},
	} {
		if exists(ctx, pool, part.table) {
			listSummary(ctx, w, pool, part.title, part.query)
		}
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

// listSummary prints a heading and one line per row of a one-column query.
func listSummary(ctx context.Context, w io.Writer, pool *pgxpool.Pool, title, query string) {
	rows, err := pool.Query(ctx, query)
	if err != nil {
		fmt.Fprintf(w, "\n%s: %v\n", title, err)
		return
	}
	defer rows.Close()
	fmt.Fprintf(w, "\n%s\n", title)
	n := 0
	for rows.Next() {
		var line *string
		if err := rows.Scan(&line); err != nil {
			fmt.Fprintf(w, "  %v\n", err)
			return
		}
		if line != nil {
			fmt.Fprintf(w, "  %s\n", *line)
			n++
		}
	}
	if n == 0 {
		fmt.Fprintln(w, "  (none)")
	}
}

// portalSummary prints what each portal received from webhook-egress.
func portalSummary(w io.Writer, r *receiver) {
	got := r.since(0)
	fmt.Fprintf(w, "\nPortal updates (webhook-egress, signed Standard Webhooks)\n")
	if len(got) == 0 {
		fmt.Fprintln(w, "  none")
		return
	}
	byPortal := map[string]map[string]int{}
	verified := 0
	for _, d := range got {
		if byPortal[d.Portal] == nil {
			byPortal[d.Portal] = map[string]int{}
		}
		byPortal[d.Portal][d.Type]++
		if d.Verified {
			verified++
		}
	}
	names := make([]string, 0, len(byPortal))
	for n := range byPortal {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		types := make([]string, 0, len(byPortal[n]))
		for t := range byPortal[n] {
			types = append(types, t)
		}
		sort.Strings(types)
		parts := make([]string, len(types))
		for i, t := range types {
			parts[i] = fmt.Sprintf("%d × %s", byPortal[n][t], strings.TrimPrefix(t, "cn.huzhou."))
		}
		fmt.Fprintf(w, "  %s: %s\n", n, strings.Join(parts, ", "))
	}
	fmt.Fprintf(w, "  %d of %d signatures verified by the receiving portal\n", verified, len(got))
}
