package mapreduce_test

import (
	"errors"
	"testing"
	"time"

	"github.com/mrengine/mr/mapreduce"
)

func TestRow_Getters(t *testing.T) {
	t.Parallel()
	b := mapreduce.NewBatch([]string{"n", "s", "ts", "f", "flag", "missing"})
	v := b.Append(7)
	v[0], v[1], v[2], v[3], v[4], v[5] = "42", []byte("text"), "2026-03-04 23:30:00-05:00", int64(3), int64(1), nil
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
		b.Append(1)[0] = c.stored
		if got := b.Row(0).Decimal(0).Text('f'); got != c.want {
			t.Errorf("Decimal of %#v = %s, want %s", c.stored, got, c.want)
		}
	}
}

func TestRow_GetterPanics(t *testing.T) {
	t.Parallel()
	b := mapreduce.NewBatch([]string{"account_id"})
	b.Append(1)[0] = nil
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
