package runtime

import (
	"testing"

	"github.com/kelseyhightower/envconfig"
)

// A Relay left with zero settings uses the defaults of RELAY_INTERVAL,
// OUTBOX_RETENTION and INBOX_RETENTION: one source for both.
func TestRelayDefaultsAreBaseDefaults(t *testing.T) {
	t.Parallel()
	var b Base
	if err := envconfig.Process("", &b); err != nil {
		t.Fatal(err)
	}
	r := &Relay{}
	r.defaults()
	if r.Interval != b.RelayInterval || r.OutboxRetention != b.OutboxRetention || r.InboxRetention != b.InboxRetention {
		t.Fatalf("relay interval %v, retentions %v/%v; want Base's %v, %v/%v",
			r.Interval, r.OutboxRetention, r.InboxRetention, b.RelayInterval, b.OutboxRetention, b.InboxRetention)
	}
	if b.RelayInterval == 0 || b.OutboxRetention == 0 || b.InboxRetention == 0 {
		t.Fatalf("Base defaults missing: %+v", b)
	}
}
