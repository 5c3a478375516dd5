package partition

import (
	"encoding/json"
	"fmt"
	"math"
	"testing"
)

func TestSplit(t *testing.T) {
	t.Parallel()
	cases := []struct {
		min, max int64
		n        int
	}{
		{1, 1_000_000, 8}, {1, 3, 8}, {-50, 50, 7}, {5, 5, 1}, {5, 5, 4},
		{math.MinInt64, math.MaxInt64 - 1, 3}, {0, 99, 100}, {0, 1<<40 + 17, 13},
		// Spans that touch either end of int64, or both.
		{0, math.MaxInt64, 2}, {math.MaxInt64 - 1, math.MaxInt64, 1}, {math.MaxInt64 - 1, math.MaxInt64, 2},
		{math.MaxInt64 - 1, math.MaxInt64, 5}, {math.MaxInt64, math.MaxInt64, 1}, {math.MaxInt64, math.MaxInt64, 4},
		{math.MinInt64, math.MinInt64, 1}, {math.MinInt64, math.MinInt64, 3}, {math.MinInt64, math.MinInt64 + 1, 2},
		{math.MinInt64, -1, 7}, {math.MinInt64, math.MaxInt64, 1}, {math.MinInt64, math.MaxInt64, 2},
		{math.MinInt64, math.MaxInt64, 3}, {math.MinInt64, math.MaxInt64, 1000}, {math.MinInt64 + 1, math.MaxInt64, 8},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%d..%d/n=%d", c.min, c.max, c.n), func(t *testing.T) {
			t.Parallel()
			rs, err := Split(c.min, c.max, c.n)
			if err != nil {
				t.Fatal(err)
			}
			if len(rs) != c.n {
				t.Fatalf("got %d ranges, want %d", len(rs), c.n)
			}
			checkTiling(t, rs, c.min, c.max)
			// Equal widths: no two ranges differ by more than one value.
			lo, hi := rs[0].Width(), rs[0].Width()
			for _, r := range rs {
				lo, hi = min(lo, r.Width()), max(hi, r.Width())
			}
			if span := Through(c.min, c.max).Width(); hi-lo > 1 && hi-lo > span*1e-15 {
				t.Errorf("ranges %v are %v to %v values wide", rs, lo, hi)
			}
		})
	}
}

// checkTiling checks that rs cover [min, max] exactly: contiguous, in
// order, each cursor value in exactly one range, only the last with ToMax.
// Both ends of the span, and the values around each cut, are probed with
// Contains.
func checkTiling(t *testing.T, rs []Range, min, max int64) {
	t.Helper()
	if rs[0].Lo != min {
		t.Fatalf("ranges %v begin at %d, want %d", rs, rs[0].Lo, min)
	}
	for i := 1; i < len(rs); i++ {
		if rs[i].Lo != rs[i-1].Hi || rs[i].Hi < rs[i].Lo || rs[i-1].ToMax {
			t.Fatalf("ranges %d and %d are not contiguous: %v %v", i-1, i, rs[i-1], rs[i])
		}
	}
	if want := Through(rs[len(rs)-1].Lo, max); rs[len(rs)-1] != want {
		t.Fatalf("last range %v, want %v", rs[len(rs)-1], want)
	}
	probes := []int64{min, max}
	for _, r := range rs {
		for _, d := range []int64{-1, 0, 1} {
			if c := r.Lo + d; (d >= 0 || r.Lo != math.MinInt64) && (d <= 0 || r.Lo != math.MaxInt64) && min <= c && c <= max {
				probes = append(probes, c)
			}
		}
	}
	for _, c := range probes {
		n := 0
		for _, r := range rs {
			if r.Contains(c) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("cursor %d lies in %d of the ranges %v, want 1", c, n, rs)
		}
	}
	if min > math.MinInt64 && rs[0].Contains(min-1) {
		t.Errorf("ranges %v hold %d, below min", rs, min-1)
	}
	if max < math.MaxInt64 && rs[len(rs)-1].Contains(max+1) {
		t.Errorf("ranges %v hold %d, above max", rs, max+1)
	}
}

func TestSplit_Invalid(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		min, max int64
		n        int
		want     string
	}{
		{1, 10, 0, "partition: need at least 1 partition, got 0"},
		{10, 1, 2, "partition: max 1 below min 10"},
		{math.MaxInt64, math.MinInt64, 2, "partition: max -9223372036854775808 below min 9223372036854775807"},
	} {
		_, err := Split(c.min, c.max, c.n)
		if err == nil || err.Error() != c.want {
			t.Errorf("Split(%d, %d, %d) = %v, want %q", c.min, c.max, c.n, err, c.want)
		}
	}
}

func TestRange(t *testing.T) {
	t.Parallel()
	const maxInt, minInt = math.MaxInt64, math.MinInt64
	for _, c := range []struct {
		r      Range
		str    string
		last   int64 // when not empty
		empty  bool
		in     []int64
		out    []int64
		width  float64
		asJSON string
	}{
		{r: Range{Lo: 3, Hi: 7}, str: "[3, 7)", last: 6, in: []int64{3, 6}, out: []int64{2, 7}, width: 4, asJSON: `{"lo":3,"hi":7}`},
		{r: Range{Lo: 5, Hi: 5}, str: "[5, 5)", empty: true, out: []int64{4, 5}},
		{r: Range{Lo: 8, Hi: 3}, str: "[8, 3)", empty: true, out: []int64{3, 5, 8}},
		{r: Range{Lo: minInt, Hi: minInt}, str: "[-9223372036854775808, -9223372036854775808)", empty: true, out: []int64{minInt, maxInt}},
		{r: Range{Lo: minInt, Hi: minInt + 1}, str: "[-9223372036854775808, -9223372036854775807)", last: minInt, in: []int64{minInt}, out: []int64{minInt + 1}, width: 1},
		{r: Range{Lo: maxInt - 1, Hi: maxInt}, str: "[9223372036854775806, 9223372036854775807)", last: maxInt - 1, in: []int64{maxInt - 1}, out: []int64{maxInt}, width: 1},
		{r: Range{Lo: maxInt, Hi: maxInt}, str: "[9223372036854775807, 9223372036854775807)", empty: true, out: []int64{maxInt}},
		{r: Through(maxInt, maxInt), str: "[9223372036854775807, 9223372036854775807]", last: maxInt, in: []int64{maxInt}, out: []int64{maxInt - 1}, width: 1,
			asJSON: `{"lo":9223372036854775807,"hi":9223372036854775807,"to_max":true}`},
		{r: Through(minInt, maxInt), str: "[-9223372036854775808, 9223372036854775807]", last: maxInt, in: []int64{minInt, -1, 0, maxInt}, width: 1 << 64},
		{r: Through(-2, -3), str: "[-2, -2)", empty: true, out: []int64{-3, -2}},
	} {
		t.Run(c.str, func(t *testing.T) {
			t.Parallel()
			if got := c.r.String(); got != c.str {
				t.Errorf("String = %s", got)
			}
			last, ok := c.r.Last()
			if c.r.Empty() != c.empty || ok == c.empty || ok && last != c.last {
				t.Errorf("Empty = %v, Last = %d, %v; want empty %v, last %d", c.r.Empty(), last, ok, c.empty, c.last)
			}
			for _, v := range c.in {
				if !c.r.Contains(v) {
					t.Errorf("does not contain %d", v)
				}
			}
			for _, v := range c.out {
				if c.r.Contains(v) {
					t.Errorf("contains %d", v)
				}
			}
			if got := c.r.Width(); got != c.width {
				t.Errorf("Width = %v, want %v", got, c.width)
			}
			if c.asJSON == "" {
				return
			}
			js, err := json.Marshal(c.r)
			if err != nil || string(js) != c.asJSON {
				t.Errorf("JSON = %s, %v; want %s", js, err, c.asJSON)
			}
			var back Range
			if err := json.Unmarshal(js, &back); err != nil || back != c.r {
				t.Errorf("JSON %s reads back as %v, %v", js, back, err)
			}
		})
	}
}

// TestRange_After walks ranges the way a map task does, from Lo to past
// the last value, and checks that every value comes once and that the
// walk ends with an empty range, also at either end of int64.
func TestRange_After(t *testing.T) {
	t.Parallel()
	const maxInt, minInt = math.MaxInt64, math.MinInt64
	for _, r := range []Range{
		{Lo: 3, Hi: 7}, Through(maxInt-3, maxInt), Through(maxInt, maxInt), {Lo: maxInt - 3, Hi: maxInt},
		{Lo: minInt, Hi: minInt + 3}, Through(minInt, minInt), {Lo: -2, Hi: 2},
	} {
		t.Run(r.String(), func(t *testing.T) {
			t.Parallel()
			var got []int64
			for rest := r; !rest.Empty(); {
				c := rest.Lo
				if !r.Contains(c) || len(got) > 10 {
					t.Fatalf("walk reached %d (%v left) after %v", c, rest, got)
				}
				got = append(got, c)
				rest = rest.After(c)
			}
			if want := r.Width(); float64(len(got)) != want {
				t.Errorf("walk gave %v, want %v values", got, want)
			}
		})
	}
	for _, c := range []struct {
		r    Range
		c    int64
		want Range
	}{
		{Range{Lo: 3, Hi: 7}, 4, Range{Lo: 5, Hi: 7}},
		{Range{Lo: 3, Hi: 7}, 6, Range{Lo: 7, Hi: 7}},
		{Range{Lo: 3, Hi: 7}, 100, Range{Lo: 7, Hi: 7}},
		{Range{Lo: 3, Hi: 7}, 1, Range{Lo: 3, Hi: 7}},
		{Through(0, maxInt), maxInt - 1, Through(maxInt, maxInt)},
		{Through(0, maxInt), maxInt, Range{Lo: maxInt, Hi: maxInt}},
		{Range{Lo: 0, Hi: maxInt}, maxInt - 1, Range{Lo: maxInt, Hi: maxInt}},
		{Range{Lo: 0, Hi: maxInt}, maxInt, Range{Lo: maxInt, Hi: maxInt}},
		{Range{Lo: minInt, Hi: minInt + 1}, minInt, Range{Lo: minInt + 1, Hi: minInt + 1}},
	} {
		if got := c.r.After(c.c); got != c.want {
			t.Errorf("%v.After(%d) = %v, want %v", c.r, c.c, got, c.want)
		}
	}
}
