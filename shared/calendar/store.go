package calendar

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Querier is what loading needs: a pool, a connection or a transaction.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Load reads every marked day from qinqing.calendar_days.
func Load(ctx context.Context, q Querier, loc *time.Location) (*Calendar, error) {
	rows, err := q.Query(ctx, `SELECT day, kind FROM qinqing.calendar_days`)
	if err != nil {
		return nil, fmt.Errorf("load calendar: %w", err)
	}
	marked := map[Date]Kind{}
	for rows.Next() {
		var day time.Time
		var kind string
		if err := rows.Scan(&day, &kind); err != nil {
			return nil, fmt.Errorf("load calendar: %w", err)
		}
		marked[Date{day.Year(), day.Month(), day.Day()}] = Kind(kind)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load calendar: %w", err)
	}
	return New(loc, marked), nil
}

// Publish replaces one year's arrangement in tx: a later publication for
// the same year replaces the earlier one.
func Publish(ctx context.Context, tx pgx.Tx, year int, holidays, workdays []Date, source string) error {
	if _, err := tx.Exec(ctx, `DELETE FROM qinqing.calendar_days WHERE day >= make_date($1,1,1) AND day < make_date($1+1,1,1)`, year); err != nil {
		return fmt.Errorf("publish calendar: %w", err)
	}
	days := make([]string, 0, len(holidays)+len(workdays))
	kinds := make([]string, 0, cap(days))
	for _, d := range holidays {
		days, kinds = append(days, d.String()), append(kinds, string(Holiday))
	}
	for _, d := range workdays {
		days, kinds = append(days, d.String()), append(kinds, string(Workday))
	}
	if _, err := tx.Exec(ctx, `INSERT INTO qinqing.calendar_days (day, kind)
		SELECT d::date, k FROM unnest($1::text[], $2::text[]) AS u(d, k)`, days, kinds); err != nil {
		return fmt.Errorf("publish calendar: %w", err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO qinqing.calendar_years (year, source, published_at) VALUES ($1, $2, now())
		ON CONFLICT (year) DO UPDATE SET source = EXCLUDED.source, published_at = now()`, year, source); err != nil {
		return fmt.Errorf("publish calendar: %w", err)
	}
	return nil
}

// Cache keeps the loaded calendar for a short while, so a burst of events
// reads the table once. A publication reaches other instances within TTL.
type Cache struct {
	Loc *time.Location
	TTL time.Duration

	mu       sync.Mutex
	cal      *Calendar
	loadedAt time.Time
}

// NewCache returns a cache for the business time zone loc.
func NewCache(loc *time.Location) *Cache { return &Cache{Loc: loc, TTL: 30 * time.Second} }

// Get returns the calendar, loading it through q when stale.
func (c *Cache) Get(ctx context.Context, q Querier) (*Calendar, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cal != nil && time.Since(c.loadedAt) < c.TTL {
		return c.cal, nil
	}
	cal, err := Load(ctx, q, c.Loc)
	if err != nil {
		return nil, err
	}
	c.cal, c.loadedAt = cal, time.Now()
	return cal, nil
}

// Invalidate forgets the cached calendar (after a publication in this process).
func (c *Cache) Invalidate() {
	c.mu.Lock()
	c.cal = nil
	c.mu.Unlock()
}
