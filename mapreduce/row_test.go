package mapreduce_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/mrengine/mr/mapreduce"
)

func TestRow_Getters(t *testing.T) {
	t.Parallel()
	b := mapreduce.NewBatch([]string{"n", "s", "ts", "f", "flag", "missing"})
	b.Append(7)
	for c, v := range []any{"42", []byte("text"), "2026-03-04 23:30:00-05:00", int64(3), int64(1), nil} {
		b.Set(c, v)
	}
	r := b.Row(0)
	if r.Cursor() != 7 || r.Int64(0) != 42 || r.String(1) != "text" || r.Float64(3) != 3 || !r.Bool(4) || !r.Null(5) {
		t.Errorf("getters disagree with the stored values %v", r.Columns())
	}
	if got, want := r.Time(2), time.Date(2026, 3, 5, 4, 30, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("Time = %v, want %v", got, want)
	}
	if got := mapreduce.DateOf(r.Time(2)).String(); got != "2026-03-05" {
		t.Errorf("UTC day = %s, want 2026-03-05", got)
	}
}

// TestBatch_TypedCells checks that each typed setter reads back through
// Value and the typed getters as Set of the same value would, that text
// is copied, and that a row of typed cells costs no allocation (not in
// parallel: AllocsPerRun counts the whole process's).
func TestBatch_TypedCells(t *testing.T) {
	ts := time.Date(1969, 12, 31, 23, 59, 59, 999_999_000, time.UTC) // before 1970: negative microseconds
	b := mapreduce.NewBatch([]string{"i", "f", "yes", "ts", "text", "bytes", "null"})
	src := []byte("payload")
	fill := func() {
		b.Append(1)
		b.SetInt64(0, -1<<40)
		b.SetFloat64(1, 2.5)
		b.SetBool(2, true)
		b.SetUnixMicro(3, ts.UnixMicro())
		b.SetText(4, src)
		b.SetBytes(5, src[:3])
	}
	fill()
	src[0] = 'X' // the batch holds its own copy
	r := b.Row(0)
	want := []any{int64(-1 << 40), 2.5, true, ts, "payload", []byte("pay"), nil}
	for c, w := range want {
		if got := r.Value(c); fmt.Sprint(got) != fmt.Sprint(w) || fmt.Sprintf("%T", got) != fmt.Sprintf("%T", w) {
			t.Errorf("Value(%d) = %T %v, want %T %v", c, got, got, w, w)
		}
	}
	if r.Int64(0) != -1<<40 || r.Float64(1) != 2.5 || !r.Bool(2) || !r.Time(3).Equal(ts) || r.Time(3).Location() != time.UTC ||
		r.String(4) != "payload" || string(r.Bytes(4)) != "payload" || r.String(5) != "pay" || !r.Null(6) || r.Null(4) {
		t.Errorf("typed getters disagree with the stored values %v", r.Columns())
	}
	src[0] = 'p'
	b.Reset()
	if n := testing.AllocsPerRun(100, func() {
		b.Reset()
		fill()
		r := b.Row(0)
		_, _, _, _, _ = r.Int64(0), r.Float64(1), r.Bool(2), r.Time(3), r.Bytes(4)
	}); n != 0 {
		t.Errorf("a row of typed cells allocates %v times, want 0", n)
	}
}

func TestRow_Decimal(t *testing.T) {
	t.Parallel()
	b := mapreduce.NewBatch([]string{"d"})
	for _, c := range []struct {
		stored any
		want   string
	}{
		{"125157220.56", "125157220.56"}, {[]byte("-0.50"), "-0.50"}, {int64(-7), "-7"}, {0.1, "0.1"},
		{"123456789012345678901234567890.123456789012", "123456789012345678901234567890.123456789012"},
	} {
		b.Reset()
		b.Append(1)
		b.Set(0, c.stored)
		if got := b.Row(0).Decimal(0).Text('f'); got != c.want {
			t.Errorf("Decimal of %#v = %s, want %s", c.stored, got, c.want)
		}
	}
}

func TestRow_GetterPanics(t *testing.T) {
	t.Parallel()
	b := mapreduce.NewBatch([]string{"account_id"})
	b.Append(1)
	defer func() {
		var ce *mapreduce.ColumnError
		err, _ := recover().(error)
		if !errors.As(err, &ce) || err.Error() != "column account_id: want int64, got NULL" {
			t.Errorf("panic = %v, want a *ColumnError about NULL", err)
		}
	}()
	b.Row(0).Int64(0)
}

func TestDateOf(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		t    time.Time
		want string
	}{
		{time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC), "1970-01-01"},
		{time.Date(1969, 12, 31, 23, 59, 59, 0, time.UTC), "1969-12-31"},
		{time.Date(2026, 11, 29, 23, 0, 0, 0, time.FixedZone("", -2*3600)), "2026-11-30"},
	} {
		if got := mapreduce.DateOf(c.t).String(); got != c.want {
			t.Errorf("DateOf(%v) = %s, want %s", c.t, got, c.want)
		}
	}
}
