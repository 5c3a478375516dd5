package rollup

import "testing"

func TestParseInterval(t *testing.T) {
	t.Parallel()
	const sec, min, hour = 1_000_000, 60_000_000, 3_600_000_000
	tests := []struct {
		s            string
		months, days int32
		micros       int64
	}{
		{"15 minutes", 0, 0, 15 * min},
		{"15 minute", 0, 0, 15 * min},
		{"15min", 0, 0, 15 * min},
		{"15 MINS", 0, 0, 15 * min},
		{"1 hour", 0, 0, hour},
		{"1h30m", 0, 0, 90 * min},
		{"1 hr 30 m", 0, 0, 90 * min},
		{"1.5 hours", 0, 0, 90 * min},
		{"90", 0, 0, 90 * sec},
		{"30 s", 0, 0, 30 * sec},
		{"500 ms", 0, 0, 500_000},
		{"250 microseconds", 0, 0, 250},
		{"2 milliseconds", 0, 0, 2000},
		{"1 day", 0, 1, 0},
		{"1.5 days", 0, 1, 12 * hour},
		{"2 weeks", 0, 14, 0},
		{"1.5 weeks", 0, 10, 12 * hour},
		{"1 month", 1, 0, 0},
		{"3 mons", 3, 0, 0},
		{"1.5 months", 1, 15, 0},
		{"1 year", 12, 0, 0},
		{"1.5 years", 18, 0, 0},
		{"1 decade", 120, 0, 0},
		{"1 century", 1200, 0, 0},
		{"1 millennium", 12000, 0, 0},
		{"1 year 2 months 3 days 04:05:06", 14, 3, 4*hour + 5*min + 6*sec},
		{"01:30", 0, 0, 90 * min},
		{"1:30.5", 0, 0, 90*sec + 500_000},
		{"01:02:03.25", 0, 0, hour + 2*min + 3*sec + 250_000},
		{"1 12:00", 0, 1, 12 * hour},
		{"@ 1 minute", 0, 0, min},
		{"1 day ago", 0, -1, 0},
		{"-1 day +2 hours", 0, -1, 2 * hour},
		{"  2 days  ", 0, 2, 0},
		{"P1Y2M3DT4H5M6S", 14, 3, 4*hour + 5*min + 6*sec},
		{"PT15M", 0, 0, 15 * min},
		{"pt1.5h", 0, 0, 90 * min},
		{"P2W", 0, 14, 0},
	}
	for _, tt := range tests {
		iv, err := parseInterval(tt.s)
		if err != nil {
			t.Errorf("parseInterval(%q): %v", tt.s, err)
			continue
		}
		if iv.Months != tt.months || iv.Days != tt.days || iv.Micros != tt.micros {
			t.Errorf("parseInterval(%q) = %d months %d days %d µs, want %d %d %d", tt.s, iv.Months, iv.Days, iv.Micros, tt.months, tt.days, tt.micros)
		}
	}
}

func TestParseInterval_Errors(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", " ", "15 minuts", "minutes", "1 2", "1-2", "P", "PT", "P1H", "PT1D", "P0001-02-03",
		"1:60", "1:2:3:4", "ago", "infinity", "1 day,", "1e400 days", "--1 day", "1 day ago ago", "PT1M1"} {
		if iv, err := parseInterval(s); err == nil {
			t.Errorf("parseInterval(%q) = %+v, want an error", s, iv)
		}
	}
	if _, err := parseInterval("100000000000 years"); err == nil || err == errIntervalSyntax {
		t.Errorf("parseInterval of too many years = %v, want out of range", err)
	}
}
