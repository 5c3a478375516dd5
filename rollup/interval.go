package rollup

import (
	"errors"
	"math"
	"strconv"
	"strings"
)

// errIntervalSyntax is parseInterval's error for a string it cannot read.
var errIntervalSyntax = errors.New("not an interval")

// intervalUnit is a unit of interval input, as PostgreSQL's deltatktbl
// (src/backend/utils/adt/datetime.c) spells them.
type intervalUnit uint8

const (
	ivMicro intervalUnit = iota + 1
	ivMilli
	ivSecond
	ivMinute
	ivHour
	ivDay
	ivWeek
	ivMonth
	ivYear
	ivDecade
	ivCentury
	ivMillennium
)

// intervalUnits are the spellings of the units. PostgreSQL compares only
// a word's first ten characters (TOKMAXLEN), so "microseconds" is
// "microsecon".
var intervalUnits = map[string]intervalUnit{
	"microsecon": ivMicro, "us": ivMicro, "usec": ivMicro, "usecs": ivMicro, "usecond": ivMicro, "useconds": ivMicro,
	"millisecon": ivMilli, "ms": ivMilli, "msec": ivMilli, "msecs": ivMilli, "msecond": ivMilli, "mseconds": ivMilli,
	"s": ivSecond, "sec": ivSecond, "secs": ivSecond, "second": ivSecond, "seconds": ivSecond,
	"m": ivMinute, "min": ivMinute, "mins": ivMinute, "minute": ivMinute, "minutes": ivMinute,
	"h": ivHour, "hr": ivHour, "hrs": ivHour, "hour": ivHour, "hours": ivHour,
	"d": ivDay, "day": ivDay, "days": ivDay,
	"w": ivWeek, "week": ivWeek, "weeks": ivWeek,
	"mon": ivMonth, "mons": ivMonth, "month": ivMonth, "months": ivMonth,
	"y": ivYear, "yr": ivYear, "yrs": ivYear, "year": ivYear, "years": ivYear,
	"dec": ivDecade, "decs": ivDecade, "decade": ivDecade, "decades": ivDecade,
	"c": ivCentury, "cent": ivCentury, "century": ivCentury, "centuries": ivCentury,
	"mil": ivMillennium, "mils": ivMillennium, "millennium": ivMillennium, "millennia": ivMillennium,
}

func lookupUnit(word string) (intervalUnit, bool) {
	w := strings.ToLower(word)
	if len(w) > 10 {
		w = w[:10]
	}
	u, ok := intervalUnits[w]
	return u, ok
}

// intervalAcc sums an interval's parts as PostgreSQL's DecodeInterval
// does: fractions of a year become whole months, of a month 30-day
// days, of a week or day time, and time is rounded to microseconds.
type intervalAcc struct {
	months, days float64
	micros       float64
}

func (a *intervalAcc) add(u intervalUnit, v float64) {
	ip, fp := math.Modf(v)
	const day = 86400e6
	switch u {
	case ivMicro:
		a.micros += v
	case ivMilli:
		a.micros += v * 1e3
	case ivSecond:
		a.micros += v * 1e6
	case ivMinute:
		a.micros += v * 60e6
	case ivHour:
		a.micros += v * 3600e6
	case ivDay:
		a.days += ip
		a.micros += fp * day
	case ivWeek:
		d := v * 7
		ip, fp := math.Modf(d)
		a.days += ip
		a.micros += fp * day
	case ivMonth:
		a.months += ip
		d := fp * 30
		ip, fp := math.Modf(d)
		a.days += ip
		a.micros += fp * day
	case ivYear:
		a.months += ip*12 + math.RoundToEven(fp*12)
	case ivDecade:
		a.months += ip*120 + math.RoundToEven(fp*120)
	case ivCentury:
		a.months += ip*1200 + math.RoundToEven(fp*1200)
	case ivMillennium:
		a.months += ip*12000 + math.RoundToEven(fp*12000)
	}
}

func (a *intervalAcc) interval() (Interval, error) {
	micros := math.RoundToEven(a.micros)
	if math.Abs(a.months) > math.MaxInt32 || math.Abs(a.days) > math.MaxInt32 || math.Abs(micros) >= math.MaxInt64 {
		return Interval{}, errors.New("interval out of range")
	}
	return Interval{Months: int32(a.months), Days: int32(a.days), Micros: int64(micros)}, nil
}

// parseInterval reads s as PostgreSQL reads interval input (with
// IntervalStyle postgres): quantities with units ('1 day 2 hours',
// '15min', '1.5 weeks', '-1 day', '@ 1 minute ago'), a time ('01:30',
// '1 01:30:00', '1:30.5' is a minute and a half), a bare number of
// seconds ('90'), and ISO 8601 designators ('P1Y2M', 'PT15M'). It does
// not read the SQL-standard '1-2' (year-month) nor the ISO alternative
// format 'P0001-02-03'; for those and every string that is no interval
// it returns errIntervalSyntax.
func parseInterval(s string) (Interval, error) {
	s = strings.TrimSpace(s)
	if s != "" && (s[0] == 'P' || s[0] == 'p') {
		return parseISOInterval(s[1:])
	}
	type field struct {
		num  string // a number, with its sign
		time bool   // num is h:m[:s[.f]]
		word string // a unit, or "ago"
	}
	var fields []field
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case isSpace(c):
			i++
		case c == '@' && len(fields) == 0:
			i++
		case isDigit(c) || c == '+' || c == '-' || c == '.':
			j := i
			if c == '+' || c == '-' {
				j++
			}
			k := j
			for k < len(s) && (isDigit(s[k]) || s[k] == '.' || s[k] == ':') {
				k++
			}
			num := s[i:k]
			if !strings.ContainsAny(s[j:k], "0123456789") {
				return Interval{}, errIntervalSyntax
			}
			fields = append(fields, field{num: num, time: strings.Contains(num, ":")})
			i = k
		case 'a' <= c|0x20 && c|0x20 <= 'z':
			j := i
			for j < len(s) && 'a' <= s[j]|0x20 && s[j]|0x20 <= 'z' {
				j++
			}
			fields = append(fields, field{word: strings.ToLower(s[i:j])})
			i = j
		default:
			return Interval{}, errIntervalSyntax
		}
	}
	if len(fields) == 0 {
		return Interval{}, errIntervalSyntax
	}
	var acc intervalAcc
	ago := false
	for k := 0; k < len(fields); k++ {
		f := fields[k]
		switch {
		case f.word == "ago" && k == len(fields)-1 && k > 0:
			ago = true
		case f.word != "":
			return Interval{}, errIntervalSyntax
		case f.time:
			micros, err := parseIntervalTime(f.num)
			if err != nil {
				return Interval{}, err
			}
			acc.micros += micros
		default:
			v, err := strconv.ParseFloat(f.num, 64)
			if err != nil || math.IsInf(v, 0) {
				return Interval{}, errIntervalSyntax
			}
			var next field
			if k+1 < len(fields) {
				next = fields[k+1]
			}
			switch {
			case next.word != "" && next.word != "ago":
				u, ok := lookupUnit(next.word)
				if !ok {
					return Interval{}, errIntervalSyntax
				}
				acc.add(u, v)
				k++
			case next.time && !strings.Contains(f.num, "."):
				acc.add(ivDay, v) // '1 12:00' is a day and twelve hours
			case next == field{} || next.word == "ago":
				acc.add(ivSecond, v)
			default:
				return Interval{}, errIntervalSyntax
			}
		}
	}
	if ago {
		acc.months, acc.days, acc.micros = -acc.months, -acc.days, -acc.micros
	}
	return acc.interval()
}

// parseIntervalTime reads [+-]h:m, [+-]h:m:s[.f] or [+-]m:s.f in
// microseconds; minutes and seconds are below 60.
func parseIntervalTime(s string) (float64, error) {
	sign := 1.0
	if s[0] == '+' || s[0] == '-' {
		if s[0] == '-' {
			sign = -1
		}
		s = s[1:]
	}
	parts := strings.Split(s, ":")
	if len(parts) > 3 {
		return 0, errIntervalSyntax
	}
	var h, m, sec float64
	num := func(p string, frac bool) (float64, error) {
		if p == "" || strings.Count(p, ".") > 1 || !frac && strings.Contains(p, ".") {
			return 0, errIntervalSyntax
		}
		return strconv.ParseFloat(p, 64)
	}
	var err error
	last := len(parts) - 1
	if len(parts) == 2 && strings.Contains(parts[1], ".") { // mm:ss.f
		if m, err = num(parts[0], false); err != nil {
			return 0, err
		}
		if sec, err = num(parts[1], true); err != nil {
			return 0, err
		}
	} else {
		for i, p := range parts {
			v, err := num(p, i == last && i == 2)
			if err != nil {
				return 0, err
			}
			switch i {
			case 0:
				h = v
			case 1:
				m = v
			default:
				sec = v
			}
		}
	}
	if m >= 60 || sec >= 60 {
		return 0, errors.New("interval field value out of range")
	}
	return sign * (h*3600e6 + m*60e6 + sec*1e6), nil
}

// parseISOInterval reads the designators of an ISO 8601 interval after
// its P: [nY][nM][nW][nD][T[nH][nM][nS]], numbers signed or fractional.
func parseISOInterval(s string) (Interval, error) {
	var acc intervalAcc
	timePart, seen := false, false
	for i := 0; i < len(s); {
		if s[i] == 'T' || s[i] == 't' {
			if timePart {
				return Interval{}, errIntervalSyntax
			}
			timePart = true
			i++
			continue
		}
		j := i
		if j < len(s) && (s[j] == '+' || s[j] == '-') {
			j++
		}
		for j < len(s) && (isDigit(s[j]) || s[j] == '.') {
			j++
		}
		if j == i || j >= len(s) {
			return Interval{}, errIntervalSyntax
		}
		v, err := strconv.ParseFloat(s[i:j], 64)
		if err != nil || math.IsInf(v, 0) {
			return Interval{}, errIntervalSyntax
		}
		var u intervalUnit
		switch d := s[j] &^ 0x20; {
		case !timePart && d == 'Y':
			u = ivYear
		case !timePart && d == 'M':
			u = ivMonth
		case !timePart && d == 'W':
			u = ivWeek
		case !timePart && d == 'D':
			u = ivDay
		case timePart && d == 'H':
			u = ivHour
		case timePart && d == 'M':
			u = ivMinute
		case timePart && d == 'S':
			u = ivSecond
		default:
			return Interval{}, errIntervalSyntax
		}
		acc.add(u, v)
		seen = true
		i = j + 1
	}
	if !seen {
		return Interval{}, errIntervalSyntax
	}
	return acc.interval()
}
