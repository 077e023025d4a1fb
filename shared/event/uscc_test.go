package event

import "testing"

func TestValidateUSCC(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"91330500MA2B3C4D5B", "91330502MA28C1234X", SampleUSCC(1), SampleUSCC(9876543210)} {
		if err := ValidateUSCC("uscc", ok); err != nil {
			t.Errorf("ValidateUSCC(%s) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{"", "91330500MA2B3C4D5C", "91330500MA2B3C4D5", "91330500MA2B3C4D5BB", "91330500MI2B3C4D5B", "91330500ma2b3c4d5b", "91330500MA2B3C4D5Z"} {
		err := ValidateUSCC("enterprise.uscc", bad)
		if ErrorCode(err) != EINVALID {
			t.Errorf("ValidateUSCC(%q) = %v, want EINVALID", bad, err)
		}
	}
}

func FuzzValidateUSCC(f *testing.F) {
	f.Add("91330500MA2B3C4D5B")
	f.Add("9133050200000000001")
	f.Fuzz(func(t *testing.T, s string) {
		err := ValidateUSCC("uscc", s)
		if err != nil {
			return
		}
		// Accepted codes are 18 characters of the alphabet whose check holds.
		if len(s) != 18 {
			t.Fatalf("accepted %q of length %d", s, len(s))
		}
		c, cerr := USCCCheck(s[:17])
		if cerr != nil || c != s[17] {
			t.Fatalf("accepted %q with wrong check", s)
		}
	})
}
