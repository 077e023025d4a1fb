package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"

	"github.com/qinqing/qinqing/shared/postgres"
)

// loginRoleURLs creates (or resets) the login role of every function with
// a database, each with a new random password, and returns the URL each
// function connects with: the owner's URL with that role and password.
func loginRoleURLs(ctx context.Context, ownerURL string) (map[string]string, error) {
	passwords := map[string]string{}
	for _, fn := range postgres.DatabaseFunctions {
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		passwords[postgres.PasswordVariable(fn)] = hex.EncodeToString(b)
	}
	if _, err := postgres.CreateLoginRoles(ctx, ownerURL, func(k string) string { return passwords[k] }); err != nil {
		return nil, err
	}
	u, err := url.Parse(ownerURL)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, fn := range postgres.DatabaseFunctions {
		fu := *u
		fu.User = url.UserPassword(postgres.LoginRole(fn), passwords[postgres.PasswordVariable(fn)])
		out[fn] = fu.String()
	}
	return out, nil
}
