package rollup

import (
	"fmt"
	"time"

	"github.com/mrengine/mr/mapreduce"
	"github.com/mrengine/mr/rollup/agg"
)

// outputExpr computes one output value column from a group's states: an
// aggregate's result, or arithmetic over results.
type outputExpr interface {
	eval(g *group) (agg.Value, error)
	kind() agg.Kind
	sqlType() string
}

// field is the output column of o, named name.
func field(o outputExpr, name string) mapreduce.Field {
	if c, ok := o.(*callOut); ok && c.kind() == agg.KindArray {
		return mapreduce.Field{Name: name, Type: fieldType(elemKind(c.fn.ResultType())), Array: true, SQLType: o.sqlType()}
	}
	return mapreduce.Field{Name: name, Type: fieldType(o.kind()), SQLType: o.sqlType()}
}

type callOut struct {
	index int
	fn    *agg.Func
}

func (c *callOut) eval(g *group) (agg.Value, error) { return g.states[c.index].Result() }
func (c *callOut) kind() agg.Kind                   { return c.fn.ResultKind() }
func (c *callOut) sqlType() string                  { return c.fn.ResultType() }

type constOut struct{ v agg.Value }

func (c *constOut) eval(*group) (agg.Value, error) { return c.v, nil }
func (c *constOut) kind() agg.Kind                 { return c.v.Kind }
func (c *constOut) sqlType() string {
	if c.v.Kind == agg.KindInt && c.v.Int == int64(int32(c.v.Int)) {
		return "integer" // as PostgreSQL types an integer literal that fits
	}
	return kindSQLType(c.v.Kind)
}

type negOut struct{ x outputExpr }

func (n *negOut) eval(g *group) (agg.Value, error) {
	v, err := n.x.eval(g)
	if err != nil {
		return v, err
	}
	return agg.Neg(v)
}
func (n *negOut) kind() agg.Kind  { return n.x.kind() }
func (n *negOut) sqlType() string { return n.x.sqlType() }

type binaryOut struct {
	op   byte
	l, r outputExpr
	k    agg.Kind
}

func (b *binaryOut) eval(g *group) (agg.Value, error) {
	l, err := b.l.eval(g)
	if err != nil {
		return l, err
	}
	r, err := b.r.eval(g)
	if err != nil {
		return r, err
	}
	return agg.Arith(b.op, l, r)
}
func (b *binaryOut) kind() agg.Kind  { return b.k }
func (b *binaryOut) sqlType() string { return arithType(b.op, b.l.sqlType(), b.r.sqlType(), b.k) }

// arithType is the PostgreSQL type of l op r, whose kind is k: of two
// integers the wider, of two reals real, else k's type.
func arithType(op byte, l, r string, k agg.Kind) string {
	width := map[string]int{"smallint": 1, "integer": 2, "bigint": 3}
	switch {
	case k == agg.KindInt && width[l] > 0 && width[r] > 0:
		if width[l] >= width[r] {
			return l
		}
		return r
	case k == agg.KindFloat && op != '^' && l == "real" && r == "real":
		return "real"
	}
	return kindSQLType(k)
}

// argument is the expression a computed key truncates.
func (e *DateTrunc) argument() Arg  { return e.Arg }
func (e *TimeBucket) argument() Arg { return e.Arg }

// truncation returns the function a date_trunc or time_bucket key applies
// to microseconds since 1970, and how --explain describes it.
func (c *compiler) truncation(e Expr, kind agg.Kind) (func(int64) int64, string, error) {
	switch e := e.(type) {
	case *DateTrunc:
		loc, zone := time.UTC, "UTC"
		if e.Zone != "" {
			var err error
			if loc, err = time.LoadLocation(e.Zone); err != nil {
				return nil, "", c.errorf(e.SQL, "name a zone of the IANA database, such as 'Europe/Berlin' or 'UTC'",
					"unknown time zone %q", e.Zone)
			}
			zone = e.Zone
		}
		unit := e.Unit
		return func(us int64) int64 { return truncate(us, unit, loc) },
			fmt.Sprintf("mr: date_trunc('%s', …) in %s", unit, zone), nil
	case *TimeBucket:
		iv := e.Interval
		if iv.Months != 0 {
			return func(us int64) int64 { return bucketMonths(us, int64(iv.Months)) },
				fmt.Sprintf("mr: time_bucket(%s, …) from 2000-01-01", iv.SQL.Text), nil
		}
		width := int64(iv.Days)*microsPerDay + iv.Micros
		return func(us int64) int64 { return floorDiv(us-bucketOrigin, width)*width + bucketOrigin },
			fmt.Sprintf("mr: time_bucket(%s, …) from 2000-01-03 UTC", iv.SQL.Text), nil
	}
	panic("rollup: truncation of a key that is neither date_trunc nor time_bucket")
}

// bucketOrigin is TimescaleDB's origin of buckets without months: Monday
// 2000-01-03, so that weekly buckets start on Mondays.
var bucketOrigin = time.Date(2000, 1, 3, 0, 0, 0, 0, time.UTC).UnixMicro()

// bucketMonths is time_bucket of a whole number of months, counted from
// 2000-01-01 UTC.
func bucketMonths(us, months int64) int64 {
	t := time.UnixMicro(us).UTC()
	n := int64(t.Year()-2000)*12 + int64(t.Month()-1)
	n = floorDiv(n, months) * months
	return time.Date(2000+int(floorDiv(n, 12)), time.Month(n-floorDiv(n, 12)*12+1), 1, 0, 0, 0, 0, time.UTC).UnixMicro()
}

// truncate is PostgreSQL's date_trunc(unit, t, zone): t's fields in the
// zone, those below unit reset. As PostgreSQL does, a unit below a day
// keeps t's own UTC offset, and a day or more takes the offset of the
// local midnight it lands on (see localMidnight): around a clock change
// the two differ, and Go's time.Date leaves its choice unspecified.
func truncate(us int64, unit TruncUnit, loc *time.Location) int64 {
	t := time.UnixMicro(us).In(loc)
	y, m, d := t.Date()
	off := offsetAt(us, loc)
	day := func(y int, m time.Month, d int) int64 { return localMidnight(y, m, d, loc) }
	switch unit {
	case Microseconds:
		return us
	case Milliseconds:
		return floorDiv(us, 1000) * 1000
	case Second:
		return floorDiv(us, 1_000_000) * 1_000_000
	case Minute:
		return floorDiv(us+off, 60_000_000)*60_000_000 - off
	case Hour:
		return floorDiv(us+off, 3600_000_000)*3600_000_000 - off
	case Day:
		return day(y, m, d)
	case Week: // ISO weeks start on Monday
		return day(y, m, d-(int(t.Weekday())+6)%7)
	case Month:
		return day(y, m, 1)
	case Quarter:
		return day(y, m-(m-1)%3, 1)
	case Year:
		return day(y, 1, 1)
	case Decade:
		return day(y-y%10, 1, 1)
	case Century: // the first century began with year 1
		return day((y-1)/100*100+1, 1, 1)
	}
	return day((y-1)/1000*1000+1, 1, 1) // Millennium
}

// localMidnight is the instant of midnight on y-m-d in loc as PostgreSQL
// resolves a local time (DetermineTimeZoneOffset): a time that a clock
// change skips takes the offset from before the change, one that it
// repeats the offset from after. The offsets a day before and after are
// those around any change near midnight: zones change at most twice a
// year.
func localMidnight(y int, m time.Month, d int, loc *time.Location) int64 {
	wall := time.Date(y, m, d, 0, 0, 0, 0, time.UTC).UnixMicro()
	before, after := offsetAt(wall-microsPerDay, loc), offsetAt(wall+microsPerDay, loc)
	if offsetAt(wall-after, loc) == after { // after the change, or repeated
		return wall - after
	}
	return wall - before // before the change, or skipped
}

// offsetAt is loc's UTC offset at the instant us, in microseconds.
func offsetAt(us int64, loc *time.Location) int64 {
	_, off := time.UnixMicro(us).In(loc).Zone()
	return int64(off) * 1_000_000
}
