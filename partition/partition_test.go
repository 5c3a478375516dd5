package partition

import (
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
			if rs[0].Lo != c.min || rs[len(rs)-1].Hi != c.max+1 {
				t.Fatalf("ranges %v do not cover [%d, %d]", rs, c.min, c.max)
			}
			for i := 1; i < len(rs); i++ {
				if rs[i].Lo != rs[i-1].Hi || rs[i].Hi < rs[i].Lo {
					t.Fatalf("ranges %d and %d are not contiguous: %v %v", i-1, i, rs[i-1], rs[i])
				}
			}
		})
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
		{0, math.MaxInt64, 2, "partition: cursor value 9223372036854775807 leaves no room for an exclusive upper bound"},
	} {
		_, err := Split(c.min, c.max, c.n)
		if err == nil || err.Error() != c.want {
			t.Errorf("Split(%d, %d, %d) = %v, want %q", c.min, c.max, c.n, err, c.want)
		}
	}
}
