package rollup

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/apd/v3"
)

// TestSetDecimalText checks the fast path of setDecimalText against apd's
// SetString, field by field, on the edge cases and on random numerics.
func TestSetDecimalText(t *testing.T) {
	t.Parallel()
	cases := []string{
		"0", "-0", "0.0", "-0.000", "1", "-1", "12.345678", "-12.345678", "5.", ".5", "-.5",
		"007.50", "9999999999999999999", "-9999999999999999999", "0.9999999999999999999",
		"18446744073709551615", "99999999999999999999", "1.0000000000000000000001",
		"", "-", ".", "-.", "1.2.3", "1e3", "1E-3", "+1", "--1", "NaN", "nan", "Infinity",
		"-Infinity", "inf", "1 ", " 1", "1_0", "١",
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 2000 {
		digits := strconv.FormatUint(rng.Uint64()>>rng.IntN(64), 10)
		if p := rng.IntN(len(digits) + 1); p < len(digits) {
			digits = digits[:p] + "." + digits[p:]
		}
		if rng.IntN(2) == 0 {
			digits = "-" + strings.Repeat("0", rng.IntN(3)) + digits
		}
		cases = append(cases, digits)
	}
	for _, s := range cases {
		var want, got apd.Decimal
		_, _, wantErr := want.SetString(s)
		gotErr := setDecimalText(&got, s)
		if (wantErr != nil) != (gotErr != nil) {
			t.Errorf("%q: error %v, SetString's %v", s, gotErr, wantErr)
			continue
		}
		if wantErr != nil {
			continue
		}
		if got.Form != want.Form || got.Negative != want.Negative || got.Exponent != want.Exponent || got.Coeff.Cmp(&want.Coeff) != 0 {
			t.Errorf("%q: got %+v (%s), SetString gives %+v (%s)", s, got, got.Text('G'), want, want.Text('G'))
		}
	}
}
