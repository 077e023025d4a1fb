// Package forum is what other functions need of the forum signups that
// functions/forum-signup keeps (schema forum, migration 0010): the
// statements they run on its tables (docs/runtime.md, "Where SQL
// lives"). forum-signup's own statements stay in its store files.
package forum

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/qinqing/qinqing/shared/postgres"
)

// SignupSource returns the source a signup recorded (nil when it recorded
// none), false when the signup is not on record (webhook-egress: its role
// may read only signup_id and source of forum.signups).
func SignupSource(ctx context.Context, q postgres.Querier, signupID string) (*string, bool, error) {
	var source *string
	err := q.QueryRow(ctx, `SELECT source FROM forum.signups WHERE signup_id = $1`, signupID).Scan(&source)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, false, nil
	case err != nil:
		return nil, false, fmt.Errorf("signup origin: %w", err)
	}
	return source, true, nil
}
