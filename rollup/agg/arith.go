package agg

import (
	"errors"
	"fmt"
	"math"
	"math/big"

	"github.com/cockroachdb/apd/v3"
)

// ErrDivisionByZero is the error of Arith dividing by zero, as
// PostgreSQL's is.
var ErrDivisionByZero = errors.New("division by zero")

// ArithKind returns the kind of a op b for the kinds of aggregate results
// that a rollup may combine after aggregating (max(v1) - min(v2),
// corr(y, x)^2, sum(a) / count(*)), by PostgreSQL's operator resolution:
// integers give integers (and / divides them, truncating), a numeric
// makes the result numeric, a double precision makes it double precision,
// and ^ is double precision unless an operand is numeric. ok is false for
// an operand that is not a number, and for ^ of a numeric, which mr does
// not compute.
func ArithKind(op byte, a, b Kind) (k Kind, ok bool) {
	number := func(k Kind) bool { return k == KindInt || k == KindDecimal || k == KindFloat }
	switch {
	case !number(a) || !number(b):
		return KindInvalid, false
	case op == '^' && (a == KindDecimal || b == KindDecimal):
		return KindInvalid, false
	case op == '^' || a == KindFloat || b == KindFloat:
		return KindFloat, true
	case a == KindDecimal || b == KindDecimal:
		return KindDecimal, true
	}
	return KindInt, true
}

// Arith returns a op b (+ - * / ^) with PostgreSQL's semantics for the
// kinds ArithKind accepts: NULL if either is NULL, an error wrapping
// ErrOutOfRange where a bigint or double precision result overflows, and
// ErrDivisionByZero. Numeric results are exact, except for division,
// which rounds to PostgreSQL's scale (select_div_scale), as avg does.
func Arith(op byte, a, b Value) (Value, error) {
	k, ok := ArithKind(op, a.Kind, b.Kind)
	if !ok {
		return Value{}, fmt.Errorf("agg: %s %c %s: %w", a.Kind, op, b.Kind, ErrBadArgument)
	}
	if a.Null || b.Null {
		return Null(k), nil
	}
	switch k {
	case KindInt:
		return intArith(op, a.Int, b.Int)
	case KindFloat:
		return floatArith(op, toFloat(a), toFloat(b))
	}
	return decArith(op, a, b)
}

// Neg returns -a, NULL for NULL.
func Neg(a Value) (Value, error) {
	switch {
	case a.Null:
		return a, nil
	case a.Kind == KindInt:
		return intArith('-', 0, a.Int)
	case a.Kind == KindFloat:
		return FloatValue(-a.Float), nil
	case a.Kind == KindDecimal:
		v := a
		v.Dec.Neg(&a.Dec)
		return v, nil
	}
	return Value{}, fmt.Errorf("agg: -%s: %w", a.Kind, ErrBadArgument)
}

func intArith(op byte, a, b int64) (Value, error) {
	x, y := big.NewInt(a), big.NewInt(b)
	switch op {
	case '+':
		x.Add(x, y)
	case '-':
		x.Sub(x, y)
	case '*':
		x.Mul(x, y)
	case '/':
		if b == 0 {
			return Value{}, ErrDivisionByZero
		}
		x.Quo(x, y) // truncates toward zero, as PostgreSQL's int8div
	}
	if !x.IsInt64() {
		return Value{}, fmt.Errorf("agg: bigint %d %c %d: %w", a, op, b, ErrOutOfRange)
	}
	return IntValue(x.Int64()), nil
}

func floatArith(op byte, a, b float64) (Value, error) {
	var r float64
	switch op {
	case '+':
		r = a + b
	case '-':
		r = a - b
	case '*':
		r = a * b
	case '/':
		if b == 0 {
			return Value{}, ErrDivisionByZero
		}
		r = a / b
	case '^':
		switch {
		case a == 0 && b < 0:
			return Value{}, fmt.Errorf("agg: zero raised to a negative power is undefined: %w", ErrBadArgument)
		case a < 0 && b != math.Trunc(b):
			return Value{}, fmt.Errorf("agg: a negative number raised to a non-integer power yields a complex result: %w", ErrBadArgument)
		}
		r = math.Pow(a, b)
	}
	if math.IsInf(r, 0) && !math.IsInf(a, 0) && !math.IsInf(b, 0) {
		return Value{}, fmt.Errorf("agg: double precision %g %c %g: %w", a, op, b, ErrOutOfRange)
	}
	return FloatValue(r), nil
}

// toFloat converts a number to double precision, as PostgreSQL's implicit
// casts of integers and numerics do.
func toFloat(v Value) float64 {
	switch v.Kind {
	case KindInt:
		return float64(v.Int)
	case KindDecimal:
		f, _ := v.Dec.Float64()
		return f
	}
	return v.Float
}

// decArith computes on finite numerics exactly as coefficients and scales;
// NaN and infinities go through float64, whose rules for them match
// PostgreSQL's numeric ones for + - * /.
func decArith(op byte, a, b Value) (Value, error) {
	ac, as, af := decParts(a)
	bc, bs, bf := decParts(b)
	if !af || !bf {
		r, err := floatArith(op, toFloat(a), toFloat(b))
		if err != nil {
			return r, err
		}
		v := Value{Kind: KindDecimal}
		_, err = v.Dec.SetFloat64(r.Float)
		return v, err
	}
	if op == '/' {
		if bc.Sign() == 0 {
			return Value{}, ErrDivisionByZero
		}
		coef, scale := pgDiv(ac, as, bc, bs)
		v := Value{Kind: KindDecimal}
		setDecimal(&v.Dec, coef, scale)
		return v, nil
	}
	scale := max(as, bs)
	if op == '*' {
		scale = as + bs
	} else {
		ac = new(big.Int).Mul(ac, pow10Big(scale-as))
		bc = new(big.Int).Mul(bc, pow10Big(scale-bs))
	}
	r := new(big.Int)
	switch op {
	case '+':
		r.Add(ac, bc)
	case '-':
		r.Sub(ac, bc)
	case '*':
		r.Mul(ac, bc)
	}
	v := Value{Kind: KindDecimal}
	setDecimal(&v.Dec, r, scale)
	return v, nil
}

// decParts returns a number as a numeric coefficient and scale; finite is
// false for NaN and the infinities.
func decParts(v Value) (coef *big.Int, scale int32, finite bool) {
	if v.Kind == KindInt {
		return big.NewInt(v.Int), 0, true
	}
	if v.Dec.Form != apd.Finite {
		return nil, 0, false
	}
	coef = v.Dec.Coeff.MathBigInt()
	if v.Dec.Negative {
		coef.Neg(coef)
	}
	if v.Dec.Exponent > 0 {
		return coef.Mul(coef, pow10Big(v.Dec.Exponent)), 0, true
	}
	return coef, -v.Dec.Exponent, true
}
