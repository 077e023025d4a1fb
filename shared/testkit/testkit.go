// Package testkit holds what tests of every package need and that depends
// on no qinqing package, so the tests of shared/event, shared/calendar and
// the other packages below shared/runtime can use it without an import
// cycle: the business time zone and test files. The database part of the
// kit is shared/postgres/pgtest, the S3 part shared/docs/s3test, and the
// part that runs functions (fixtures, handlers on a transaction, payload
// factories) shared/runtime/functest.
package testkit

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Shanghai is the business time zone of the tests, Asia/Shanghai (the
// default QINQING_TIMEZONE). Loading it panics when the system has no
// time zone database: no test of dates could run then.
var Shanghai = func() *time.Location {
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		panic("testkit: " + err.Error())
	}
	return loc
}()

// WriteFile writes content to a file name in a directory of its own,
// removed when the test ends, and returns the file's path: a
// POLICIES_FILE, a PORTALS_FILE, a routing rules file.
func WriteFile(t testing.TB, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
