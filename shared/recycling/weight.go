// Package recycling is the domain of the waste lead-acid battery recycling
// platform (废铅蓄电池回收平台, 长兴县): collectors' licences, trade records
// (one per transfer manifest, 转移联单) and the exact decimal weights they
// carry. It validates and judges; storing and transport live elsewhere
// (functions/recycling-trade).
package recycling

import (
	"errors"
	"fmt"
	"strconv"
)

// MaxWeightIntDigits bounds the integer part of a weight: 15 digits of
// kilograms keep every weight, and every sum the platform can reach, inside
// an int64 of grams.
const MaxWeightIntDigits = 15

// ParseWeight parses a weight in kilograms written as a decimal string with
// at most three decimals ("1234.500", "12", "0.5") into an exact number of
// grams. Nothing else is a weight: no sign, exponent, spaces, thousands
// separators, or a dot without digits on both sides.
func ParseWeight(s string) (grams int64, err error) {
	if s == "" {
		return 0, errors.New("is required")
	}
	var intPart, frac string
	dot := -1
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
		case c == '.' && dot < 0:
			dot = i
		default:
			return 0, fmt.Errorf("must be a decimal number of kilograms with at most 3 decimals (e.g. \"1234.500\"), got %q", s)
		}
	}
	intPart = s
	if dot >= 0 {
		intPart, frac = s[:dot], s[dot+1:]
	}
	if intPart == "" || (dot >= 0 && frac == "") {
		return 0, fmt.Errorf("must have digits on both sides of the decimal point, got %q", s)
	}
	if len(frac) > 3 {
		return 0, fmt.Errorf("has more than 3 decimals (grams are the finest unit), got %q", s)
	}
	if len(intPart) > MaxWeightIntDigits {
		return 0, fmt.Errorf("is too large, got %q", s)
	}
	kg, err := strconv.ParseInt(intPart, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("is not a number: %q", s)
	}
	g := int64(0)
	for i := 0; i < 3; i++ {
		g *= 10
		if i < len(frac) {
			g += int64(frac[i] - '0')
		}
	}
	return kg*1000 + g, nil
}

// FormatWeight writes grams as kilograms with exactly three decimals, the
// form replies and reports use ("1234.500").
func FormatWeight(grams int64) string {
	sign := ""
	u := uint64(grams)
	if grams < 0 {
		sign, u = "-", uint64(-grams)
	}
	return fmt.Sprintf("%s%d.%03d", sign, u/1000, u%1000)
}
