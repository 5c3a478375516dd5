package agg

import (
	"math/big"
	"strconv"

	"github.com/cockroachdb/apd/v3"
)

// PostgreSQL's numeric arithmetic, for the digits of avg, variance and
// stddev (src/backend/utils/adt/numeric.c and src/include/utils/numeric.h
// of PostgreSQL 15). A numeric there is base-NBASE digits with a weight
// (the power of NBASE of its first digit) and a display scale (dscale:
// decimal digits after the point).
//
//   - numeric_div(x, y) computes x/y at rscale = select_div_scale(x, y)
//     digits after the point: enough for NUMERIC_MIN_SIG_DIGITS significant
//     digits, but no fewer than either input's dscale, within
//     [NUMERIC_MIN_DISPLAY_SCALE, NUMERIC_MAX_DISPLAY_SCALE]. div_var
//     computes exact truncated digits beyond rscale and round_var rounds
//     half away from zero: the exact quotient rounded half away from zero.
//   - sqrt_var(x, rscale) computes the truncated square root to at least
//     one decimal digit beyond rscale (Karatsuba, exact) and round_var
//     rounds it: the exact root rounded half away from zero.
//   - avg is numeric_div(sum, N); var_samp/var_pop is
//     numeric_div(N·sumX2 − sumX², N·(N−1) or N·N), or 0 (dscale 0) when
//     that numerator is ≤ 0; stddev is sqrt_var of the variance at the same
//     rscale.
const (
	pgDecDigits       = 4    // DEC_DIGITS: decimal digits per NBASE (10000) digit
	pgMinSigDigits    = 16   // NUMERIC_MIN_SIG_DIGITS
	pgMinDisplayScale = 0    // NUMERIC_MIN_DISPLAY_SCALE
	pgMaxDisplayScale = 1000 // NUMERIC_MAX_DISPLAY_SCALE
)

// nbaseLead returns the weight and the first base-NBASE digit of
// |c| × 10^-scale, as select_div_scale reads them off a NumericVar: for
// zero, weight 0 and digit 0.
func nbaseLead(c *big.Int, scale int32) (weight int, first int) {
	if c.Sign() == 0 {
		return 0, 0
	}
	var m big.Int
	digits := m.Abs(c).Text(10)
	e10 := len(digits) - 1 - int(scale) // the decimal exponent of the first digit
	weight = floorDiv(e10, pgDecDigits)
	k := e10 - pgDecDigits*weight + 1 // decimal digits in the first NBASE digit: 1…4
	if len(digits) >= k {
		first, _ = strconv.Atoi(digits[:k])
	} else {
		first, _ = strconv.Atoi(digits)
		for i := len(digits); i < k; i++ {
			first *= 10
		}
	}
	return weight, first
}

func floorDiv(a, b int) int {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// selectDivScale is select_div_scale for x = a × 10^-as and y = b × 10^-bs.
func selectDivScale(a *big.Int, as int32, b *big.Int, bs int32) int32 {
	w1, f1 := nbaseLead(a, as)
	w2, f2 := nbaseLead(b, bs)
	// Estimate the weight of the quotient; if the first digits are
	// equal, assume x < y.
	qweight := w1 - w2
	if f1 <= f2 {
		qweight--
	}
	rscale := int32(pgMinSigDigits - qweight*pgDecDigits)
	rscale = max(rscale, as, bs, pgMinDisplayScale)
	return min(rscale, pgMaxDisplayScale)
}

// divRound returns round(x/y × 10^rscale) for x = a × 10^-as, y = b ×
// 10^-bs, b ≠ 0, rounding half away from zero.
func divRound(a *big.Int, as int32, b *big.Int, bs int32, rscale int32) *big.Int {
	n := new(big.Int).Set(a)
	d := new(big.Int).Set(b)
	if e := rscale + bs - as; e >= 0 {
		n.Mul(n, pow10Big(e))
	} else {
		d.Mul(d, pow10Big(-e))
	}
	neg := (n.Sign() < 0) != (d.Sign() < 0)
	n.Abs(n)
	d.Abs(d)
	var r big.Int
	n.QuoRem(n, d, &r)
	if r.Lsh(&r, 1).Cmp(d) >= 0 {
		n.Add(n, big.NewInt(1))
	}
	if neg {
		n.Neg(n)
	}
	return n
}

// pgDiv is numeric_div(x, y): the quotient's coefficient and its scale.
func pgDiv(a *big.Int, as int32, b *big.Int, bs int32) (*big.Int, int32) {
	rscale := selectDivScale(a, as, b, bs)
	return divRound(a, as, b, bs, rscale), rscale
}

// sqrtRound returns the square root of v × 10^-scale (v ≥ 0) rounded half
// away from zero to scale digits, as a coefficient at scale: sqrt_var.
func sqrtRound(v *big.Int, scale int32) *big.Int {
	// floor(sqrt(v × 10^-scale) × 10^(scale+1)) = isqrt(v × 10^(scale+2)).
	x := new(big.Int).Mul(v, pow10Big(scale+2))
	x.Sqrt(x)
	x.Add(x, big.NewInt(5))
	return x.Quo(x, big.NewInt(10))
}

// setDecimal makes d the numeric coef × 10^-scale, never negative zero.
func setDecimal(d *apd.Decimal, coef *big.Int, scale int32) {
	*d = apd.Decimal{Exponent: -scale}
	d.Coeff.SetMathBigInt(coef)
	d.Negative = coef.Sign() < 0
	d.Coeff.Abs(&d.Coeff)
}
