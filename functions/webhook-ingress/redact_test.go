package main

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/qinqing/qinqing/shared/runtime/functest"
	"github.com/qinqing/qinqing/shared/testkit"
)

// TestWeakKeyWarningRedactsSecretShapedNames is the last point of finding
// 7 of issue 12: a portal whose name is shaped like a whsec_ secret (a
// secret pasted where the name belongs) is named in the start-up warning
// about short keys, and in request logs, only redacted.
func TestWeakKeyWarningRedactsSecretShapedNames(t *testing.T) {
	t.Parallel()
	const leaked = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	weak := "whsec_" + base64.StdEncoding.EncodeToString([]byte("sixteen-byte-key"))
	portals := fmt.Sprintf(`{"portals": {%q: {"secrets": [%q], "allowedTypes": [%q]}}}`, leaked, weak, typeAppeal)
	fn := functest.Start(t, binary, "PORTALS_FILE="+testkit.WriteFile(t, "portals.json", portals), "K_SINK=", "DATABASE_URL=")
	g := &fixture{&functest.Fixture{Fn: fn}}
	g.post(t, newWebhook(leaked, typeAppeal, appealData, weak))
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(fn.Output(), `"msg":"webhook"`) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	out := fn.Output()
	if !strings.Contains(out, "portal keys shorter than") || !strings.Contains(out, `"msg":"webhook"`) {
		t.Fatalf("no weak-key warning or request log:\n%s", out)
	}
	if strings.Contains(out, strings.TrimPrefix(leaked, "whsec_")) {
		t.Fatalf("the log reveals a secret-shaped portal name:\n%s", out)
	}
}
