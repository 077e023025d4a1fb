package postgres

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"
)

// TestSCRAMVerifier checks the verifier against the exchange of RFC 7677
// section 3 (user "user", password "pencil"): the server signature must
// verify with the ServerKey, and the client proof with the StoredKey.
func TestSCRAMVerifier(t *testing.T) {
	salt, _ := base64.StdEncoding.DecodeString("W22ZaJ0SNY7soEsUEjb6gQ==")
	v, err := scramVerifierWith("pencil", salt, 4096)
	if err != nil {
		t.Fatal(err)
	}
	head, keys, _ := strings.Cut(v, "$")
	if head != "SCRAM-SHA-256" || !strings.HasPrefix(keys, "4096:W22ZaJ0SNY7soEsUEjb6gQ==$") {
		t.Fatalf("verifier %q, want SCRAM-SHA-256$4096:<salt>$…", v)
	}
	stored64, server64, _ := strings.Cut(keys[strings.LastIndex(keys, "$")+1:], ":")
	storedKey, _ := base64.StdEncoding.DecodeString(stored64)
	serverKey, _ := base64.StdEncoding.DecodeString(server64)
	authMessage := "n=user,r=rOprNGfwEbeRWgbNEkqO," +
		"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096," +
		"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
	if got := base64.StdEncoding.EncodeToString(hmacSHA256(serverKey, authMessage)); got != "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=" {
		t.Errorf("server signature %s, want RFC 7677's", got)
	}
	proof, _ := base64.StdEncoding.DecodeString("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
	clientSig := hmacSHA256(storedKey, authMessage)
	clientKey := make([]byte, len(proof))
	for i := range proof {
		clientKey[i] = proof[i] ^ clientSig[i]
	}
	if sum := sha256.Sum256(clientKey); !hmac.Equal(sum[:], storedKey) {
		t.Errorf("RFC 7677's client proof does not verify with the StoredKey")
	}
}
