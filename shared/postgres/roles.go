package postgres

import (
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// DatabaseFunctions are the functions that connect to the database, each
// with its own group role (migrations 0090_roles.sql, 0091_egress_role.sql,
// 0092_open311_role.sql).
var DatabaseFunctions = []string{"forum-signup", "appeal-router", "deadline-check", "subsidy-disbursal",
	"recycling-trade", "award-ceremony", "dead-letter", "webhook-egress", "open311"}

// FunctionRole is the NOLOGIN group role holding a function's grants:
// "forum-signup" → "qinqing_forum_signup".
func FunctionRole(function string) string {
	return "qinqing_" + strings.ReplaceAll(function, "-", "_")
}

// LoginRole is the login role cmd/migrate -create-login-roles makes a
// member of the function's group role: "qinqing_forum_signup_login".
func LoginRole(function string) string { return FunctionRole(function) + "_login" }

// EnsureLoginRole makes LoginRole(function) exist with LOGIN, be a member
// of the function's group role, and, when password is not empty, have that
// password. The password is sent as a SCRAM-SHA-256 verifier computed here,
// so the clear text reaches neither the server nor its logs. Safe to run
// twice at once and again later (a rerun sets the password again: rotation).
func EnsureLoginRole(ctx context.Context, conn *pgx.Conn, function, password string) error {
	group, login := FunctionRole(function), LoginRole(function)
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = $1)`, group).Scan(&exists); err != nil {
		return fmt.Errorf("role %s: %w", group, err)
	}
	if !exists {
		return fmt.Errorf("role %s does not exist: run the migrations first", group)
	}
	pw := "NULL"
	if password != "" {
		verifier, err := scramVerifier(password)
		if err != nil {
			return err
		}
		pw = "'" + verifier + "'" // base64 and '$:' only: nothing to escape
	}
	id := pgx.Identifier{login}.Sanitize()
	// A DO block's body cannot take parameters: the names are quoted
	// identifiers and the verifier has no quote, so it is built as text.
	stmt := fmt.Sprintf(`DO $do$
BEGIN
    BEGIN
        CREATE ROLE %[1]s LOGIN;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN
        NULL;
    END;
    ALTER ROLE %[1]s LOGIN PASSWORD %[2]s;
    GRANT %[3]s TO %[1]s;
END
$do$`, id, pw, pgx.Identifier{group}.Sanitize())
	// Two runs against one database at once take turns (ALTER ROLE of one
	// role in two transactions fails with "tuple concurrently updated").
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if err := LockXact(ctx, tx, "qinqing.login_roles"); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, stmt)
		return err
	})
	if err != nil {
		return fmt.Errorf("login role %s: %w", login, err)
	}
	return nil
}

// scramVerifier is the SCRAM-SHA-256 verifier Postgres stores for password
// (RFC 5802 and 7677; the form of PostgreSQL's pg_authid.rolpassword).
func scramVerifier(password string) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	return scramVerifierWith(password, salt, 4096)
}

func scramVerifierWith(password string, salt []byte, iterations int) (string, error) {
	salted, err := pbkdf2.Key(sha256.New, password, salt, iterations, sha256.Size)
	if err != nil {
		return "", err
	}
	clientKey := hmacSHA256(salted, "Client Key")
	storedKey := sha256.Sum256(clientKey)
	serverKey := hmacSHA256(salted, "Server Key")
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("SCRAM-SHA-256$%d:%s$%s:%s", iterations, b64(salt), b64(storedKey[:]), b64(serverKey)), nil
}

func hmacSHA256(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// PasswordVariable is the environment variable cmd/migrate
// -create-login-roles reads a function's login password from:
// "forum-signup" → "DATABASE_PASSWORD_FORUM_SIGNUP".
func PasswordVariable(function string) string {
	return "DATABASE_PASSWORD_" + strings.ToUpper(strings.ReplaceAll(function, "-", "_"))
}

// CreateLoginRoles runs EnsureLoginRole for every function of
// DatabaseFunctions whose PasswordVariable getenv returns non-empty, on
// the database at url (connected as a role with CREATEROLE), and returns
// the login roles it created or updated. Functions without a password are
// left alone.
func CreateLoginRoles(ctx context.Context, url string, getenv func(string) string) ([]string, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	var done []string
	for _, fn := range DatabaseFunctions {
		pw := getenv(PasswordVariable(fn))
		if pw == "" {
			continue
		}
		if err := EnsureLoginRole(ctx, conn, fn, pw); err != nil {
			return done, err
		}
		done = append(done, LoginRole(fn))
	}
	return done, nil
}
