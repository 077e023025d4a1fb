package postgres

import (
	"context"
	"testing"
)

// TestDialAheadHandsItsLookupToPgx: the addresses DialAhead looked up
// answer pgx's next look-up of the same host, once (the first connection
// does not resolve the name again); later look-ups, and look-ups of
// another host, resolve.
func TestDialAheadHandsItsLookupToPgx(t *testing.T) {
	ctx := context.Background()
	calls := 0
	d := &dialAhead{lookup: func(_ context.Context, host string) ([]string, error) {
		calls++
		return []string{"10.0.0.1", "10.0.0.2:6432"}, nil
	}}
	got := d.addresses(ctx, "db.example", 5432)
	want := [][2]string{{"tcp", "10.0.0.1:5432"}, {"tcp", "10.0.0.2:6432"}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("addresses = %v, want %v (pgx's order and ports)", got, want)
	}
	if _, err := d.Lookup(ctx, "other.example"); err != nil || calls != 2 {
		t.Fatalf("a look-up of another host did not resolve: %d calls, %v", calls, err)
	}
	if addrs, err := d.Lookup(ctx, "db.example"); err != nil || calls != 2 || len(addrs) != 2 {
		t.Fatalf("pgx's look-up after DialAhead resolved again: %d calls, %v, %v", calls, addrs, err)
	}
	if _, err := d.Lookup(ctx, "db.example"); err != nil || calls != 3 {
		t.Fatalf("the answer was reused twice: %d calls, %v", calls, err)
	}
	if a := d.addresses(ctx, "/var/run/postgresql", 5432); len(a) != 1 || a[0][0] != "unix" || calls != 3 {
		t.Fatalf("a Unix socket directory: %v (%d look-ups), want one unix address, no look-up", a, calls)
	}
}
