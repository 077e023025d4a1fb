package event

import "fmt"

// usccAlphabet is the character set of the unified social credit code
// (统一社会信用代码, GB 32100-2015): digits and upper-case letters without
// I, O, S, V and Z. A character's value is its index here.
const usccAlphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"

// usccWeights are 3^(i-1) mod 31 for positions 1–17.
var usccWeights = func() [17]int {
	var w [17]int
	p := 1
	for i := range w {
		w[i] = p
		p = p * 3 % 31
	}
	return w
}()

func usccValue(c byte) int {
	for i := 0; i < len(usccAlphabet); i++ {
		if usccAlphabet[i] == c {
			return i
		}
	}
	return -1
}

// USCCCheck returns the check character for the first 17 characters of a
// code, or an error naming the first character outside the alphabet.
func USCCCheck(first17 string) (byte, error) {
	if len(first17) != 17 {
		return 0, fmt.Errorf("need 17 characters, got %d", len(first17))
	}
	sum := 0
	for i := 0; i < 17; i++ {
		v := usccValue(first17[i])
		if v < 0 {
			return 0, fmt.Errorf("character %d (%q) is not allowed", i+1, first17[i])
		}
		sum += v * usccWeights[i]
	}
	return usccAlphabet[(31-sum%31)%31], nil
}

// ValidateUSCC checks length, alphabet and the final check character of a
// unified social credit code. Only the final check character is validated,
// as the contract says, not the embedded organisation code's own.
func ValidateUSCC(field, code string) error {
	if code == "" {
		return Invalid(field, "is required")
	}
	if len(code) != 18 {
		return Invalid(field, "must be 18 characters, got %d", len(code))
	}
	want, err := USCCCheck(code[:17])
	if err != nil {
		return Invalid(field, "%v", err)
	}
	if usccValue(code[17]) < 0 {
		return Invalid(field, "character 18 (%q) is not allowed", code[17])
	}
	if code[17] != want {
		return Invalid(field, "check character is %q, want %q", code[17], want)
	}
	return nil
}

// SampleUSCC returns a valid code (a Huzhou-registered company's prefix
// 9133050, n as the serial part, the right check character) for tests and
// sample data.
func SampleUSCC(n int) string {
	body := fmt.Sprintf("9133050%010d", n%10000000000)
	c, _ := USCCCheck(body)
	return body + string(c)
}
