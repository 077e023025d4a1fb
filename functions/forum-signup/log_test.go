package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/qinqing/qinqing/shared/contract"
	"github.com/qinqing/qinqing/shared/event"
	"github.com/qinqing/qinqing/shared/runtime/functest"
)

// Every event gets one JSON log line with its type, id, outcome and
// milliseconds, whatever became of it.
func TestEventLogLines(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.schedule(t, "F1", 1, 0)

	send := func(data map[string]any) string {
		ev := functest.Event(contract.TypeSignupRequested, portalSrc, nextID(), week, data)
		f.Fn.Send(t, ev)
		return ev.ID()
	}
	handled := send(signupData("F1", event.SampleUSCC(1), "self"))
	refused := send(signupData("F404", event.SampleUSCC(2), "self"))
	bad := signupData("F1", event.SampleUSCC(3), "self")
	bad["mode"] = "vip"
	invalid := send(bad)
	huge := signupData("F1", event.SampleUSCC(4), "self")
	huge["topic"] = string(bytes.Repeat([]byte("x"), 1<<20))
	tooLarge := send(huge)
	redelivered := functest.Event(contract.TypeSignupRequested, portalSrc, handled, week, signupData("F1", event.SampleUSCC(1), "self"))
	f.Fn.Send(t, redelivered)

	want := map[string][]string{ // id → outcomes in order
		handled:  {"handled", "redelivery"},
		refused:  {"handled"},
		invalid:  {"invalid"},
		tooLarge: {"too_large"},
	}
	var lines map[string][]map[string]any
	deadline := time.Now().Add(10 * time.Second)
	for {
		lines = map[string][]map[string]any{}
		for _, line := range strings.Split(f.Fn.Output(), "\n") {
			var l map[string]any
			if json.Unmarshal([]byte(line), &l) == nil && l["msg"] == "event" {
				id, _ := l["id"].(string)
				lines[id] = append(lines[id], l)
			}
		}
		if len(lines[handled]) == 2 && len(lines[tooLarge]) == 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	for id, outcomes := range want {
		got := lines[id]
		if len(got) != len(outcomes) {
			t.Fatalf("%d log lines for event %s, want %d:\n%s", len(got), id, len(outcomes), f.Fn.Output())
		}
		for i, l := range got {
			if l["outcome"] != outcomes[i] || l["type"] != contract.TypeSignupRequested {
				t.Errorf("event %s line %d: outcome %v type %v, want %s %s", id, i, l["outcome"], l["type"], outcomes[i], contract.TypeSignupRequested)
			}
			if _, ok := l["ms"].(float64); !ok {
				t.Errorf("event %s line %d: ms = %v, want a number", id, i, l["ms"])
			}
		}
	}
	if got := lines[refused][0]["reply"]; got != contract.TypeSignupRejected {
		t.Errorf("refused signup logged reply %v, want %s", got, contract.TypeSignupRejected)
	}
}
