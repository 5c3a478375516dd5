package rollup

import "strings"

// aggSpec is the shape of an aggregate's call.
type aggSpec struct {
	args  int    // arguments computed per row
	param string // the literal parameter after them: "q" (a quantile), "n" (a count) or ""
}

// aggFuncs are the aggregates mr rollup computes.
var aggFuncs = map[Func]aggSpec{
	Count: {args: 1}, Sum: {args: 1}, Min: {args: 1}, Max: {args: 1}, Avg: {args: 1},
	Stddev: {args: 1}, StddevSamp: {args: 1}, StddevPop: {args: 1},
	Variance: {args: 1}, VarSamp: {args: 1}, VarPop: {args: 1},
	Corr:                {args: 2},
	ApproxCountDistinct: {args: 1},
	ApproxQuantile:      {args: 1, param: "q"},
	Median:              {args: 1},
	MaxN:                {args: 1, param: "n"},
	MinN:                {args: 1, param: "n"},
}

// aggList names the aggregates for messages.
const aggList = "count, sum, min, max, avg, stddev, stddev_samp, stddev_pop, variance, var_samp, var_pop, corr, approx_count_distinct, approx_quantile, median, max_n and min_n"

// aggSignatures are the aggregates' calls, for messages.
var aggSignatures = map[Func]string{
	Count: "count(*), count(x) or count(DISTINCT x)", Corr: "corr(y, x)",
	ApproxQuantile: "approx_quantile(x, q), q a number from 0 to 1",
	MaxN:           "max_n(x, n), n a whole number from 1", MinN: "min_n(x, n), n a whole number from 1",
}

func signature(f Func) string {
	if s, ok := aggSignatures[f]; ok {
		return s
	}
	return string(f) + "(x)"
}

// otherAggs are aggregates (PostgreSQL's and other databases') that mr
// rollup does not compute, each with what to write instead, "" for the
// list of those it does.
var otherAggs = map[string]string{
	"array_agg": "", "string_agg": "", "bit_and": "", "bit_or": "", "bit_xor": "", "bool_and": "", "bool_or": "", "every": "",
	"json_agg": "", "json_agg_strict": "", "jsonb_agg": "", "jsonb_agg_strict": "",
	"json_object_agg": "", "json_object_agg_strict": "", "json_object_agg_unique": "", "json_object_agg_unique_strict": "",
	"jsonb_object_agg": "", "jsonb_object_agg_strict": "", "jsonb_object_agg_unique": "", "jsonb_object_agg_unique_strict": "",
	"json_arrayagg": "", "json_objectagg": "", "range_agg": "", "range_intersect_agg": "", "xmlagg": "", "any_value": "",
	"covar_pop": "", "covar_samp": "", "regr_avgx": "", "regr_avgy": "", "regr_count": "", "regr_intercept": "",
	"regr_r2": "use corr(y, x)^2", "regr_slope": "", "regr_sxx": "", "regr_sxy": "", "regr_syy": "",
	"mode": "", "product": "", "kurtosis": "", "skewness": "", "arg_max": "", "arg_min": "", "argmax": "", "argmin": "",
	"first": "", "last": "", "list": "",
	"percentile_cont":   "use approx_quantile(x, q) or median(x)",
	"percentile_disc":   "use approx_quantile(x, q) or median(x)",
	"quantile":          "use approx_quantile(x, q)",
	"quantile_cont":     "use approx_quantile(x, q)",
	"quantile_disc":     "use approx_quantile(x, q)",
	"percentile_approx": "use approx_quantile(x, q)",
	"approx_percentile": "use approx_quantile(x, q)",
	"approx_distinct":   "use approx_count_distinct(x), or count(DISTINCT x) for an exact count",
	"count_distinct":    "use count(DISTINCT x), or approx_count_distinct(x)",
	"ndv":               "use approx_count_distinct(x)",
	"stdev":             "use stddev(x)",
	"std":               "use stddev(x)",
	"var":               "use variance(x)",
	"top_n":             "use max_n(x, n)",
	"bottom_n":          "use min_n(x, n)",
}

// windowFuncs are PostgreSQL's window functions; rank, dense_rank,
// percent_rank and cume_dist are also hypothetical-set aggregates.
var windowFuncs = map[string]bool{
	"row_number": true, "rank": true, "dense_rank": true, "percent_rank": true, "cume_dist": true,
	"ntile": true, "lag": true, "lead": true, "first_value": true, "last_value": true, "nth_value": true,
}

// Keyword categories of PostgreSQL's grammar (src/include/parser/kwlist.h).
var (
	// reservedKw cannot be column, table or function names.
	reservedKw = wordSet(`all analyse analyze and any array as asc asymmetric both case cast check collate column
		constraint create current_catalog current_date current_role current_time current_timestamp current_user
		default deferrable desc distinct do else end except false fetch for foreign from grant group having in
		initially intersect into lateral leading limit localtime localtimestamp not null offset on only or order
		placing primary references returning select session_user some symmetric system_user table then to
		trailing true union unique user using variadic when where window with`)
	// typeFuncKw can be function or type names but not column names.
	typeFuncKw = wordSet(`authorization binary collation concurrently cross current_schema freeze full ilike inner
		is isnull join left like natural notnull outer overlaps right similar tablesample verbose`)
	// asLabelKw are the keywords that PostgreSQL takes as an alias only
	// after AS (the others not reserved may follow an item bare).
	asLabelKw = wordSet(`day filter hour minute month over precision second varying within without year`)
	// constTypeKw start a type name that may come before a string, as in
	// interval '1 day' or timestamp with time zone '2024-01-01 00:00+00'.
	constTypeKw = wordSet(`bigint bit boolean char character dec decimal double float int integer interval
		national nchar numeric real smallint time timestamp varchar`)
)

func wordSet(words string) map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(words) {
		m[w] = true
	}
	return m
}

// truncUnits are the date_trunc units by PostgreSQL's spellings, which
// compare only their first ten characters, as for intervals.
var truncUnits = map[intervalUnit]TruncUnit{
	ivMicro: Microseconds, ivMilli: Milliseconds, ivSecond: Second, ivMinute: Minute, ivHour: Hour,
	ivDay: Day, ivWeek: Week, ivMonth: Month, ivYear: Year, ivDecade: Decade, ivCentury: Century,
	ivMillennium: Millennium,
}

// lookupTruncUnit reads a date_trunc unit as PostgreSQL does: folded to
// lower case, the interval units' spellings plus quarter (qtr).
func lookupTruncUnit(s string) (TruncUnit, bool) {
	switch w := strings.ToLower(s); w {
	case "quarter", "qtr":
		return Quarter, true
	}
	u, ok := lookupUnit(s)
	if !ok {
		return "", false
	}
	return truncUnits[u], true
}
