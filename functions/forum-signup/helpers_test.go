package main

import (
	"os"
	"os/exec"
	"testing"

	"github.com/qinqing/qinqing/shared/event"
)

func uscCheck(body string) (byte, error) { return event.USCCCheck(body) }

// runConfigOnly runs the binary with only the given environment and
// returns what it printed; it must refuse to start.
func runConfigOnly(t *testing.T, env ...string) ([]byte, error) {
	t.Helper()
	cmd := exec.Command(binary)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "PORT=0"}, env...)
	return cmd.CombinedOutput()
}
