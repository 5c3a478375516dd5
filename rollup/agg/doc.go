// Package agg is the aggregate functions of mr's declarative rollups: for
// each function a state that folds input values, merges with other states
// of the same function in any order and grouping with byte-identical
// results, serializes deterministically, and finalizes to the value and
// type PostgreSQL 15 gives.
//
// Schematically:
//
//	Resolve(name, distinct, argTypes, params) → *Func          // sum(numeric(12,2)), count(DISTINCT text), …
//	f.New() State → Add(args…)* → Merge(State)* → Result() (Value, error)
//	s.AppendBinary(b) → bytes → f.Decode(bytes) State          // spill files, stored bytea states
//
// The engine folds rows into states map-side, merges them reduce-side and
// across spill files in no fixed order, and stores encoded states for
// later incremental merges, so every state obeys one algebra.
//
// # The algebra
//
// For states a, b, c of one Func and e = f.New():
//
//	Merge is associative and commutative:  (a⊕b)⊕c = a⊕(b⊕c),  a⊕b = b⊕a
//	the empty state is its identity:       a⊕e = a
//	Add is a merge of one row:              Add(a, x) = a ⊕ fold(e, x)
//	states are values:                      a = b  ⇔  AppendBinary(a) = AppendBinary(b)
//	decoding is exact:                      Decode(AppendBinary(a)) = a
//
// where = is equality of encodings. So the rows of a group, however they
// are partitioned, ordered, spilled and merged, give one encoding and one
// Result. Nothing in a state depends on history: sums are exact (so
// addition is associative), ties are broken by a total order, sets are
// encoded sorted, and the sketches are canonicalized (see below).
// TestStates_MergeOrder checks all of it for every function against random
// partitions and merge trees.
//
// # Functions and result types
//
// Names as users write them in SQL, with PostgreSQL 15's result types
// (pg_aggregate and pg_proc; TestResultTypes_PostgreSQL asks a real
// server):
//
//	count(*), count(x)                   bigint
//	count(DISTINCT x)                    bigint, exact (a set of values)
//	sum(smallint | integer)              bigint
//	sum(bigint | numeric)                numeric
//	sum(real)                            real
//	sum(double precision)                double precision
//	avg(smallint | integer | bigint | numeric)                 numeric
//	avg(real | double precision)                               double precision
//	var_samp = variance, var_pop, stddev_samp = stddev, stddev_pop:
//	  of smallint | integer | bigint | numeric                 numeric
//	  of real | double precision                               double precision
//	corr(y, x)                           double precision (integer and numeric arguments cast, as PostgreSQL does)
//	min(x), max(x)                       x's type (character varying gives text)
//	approx_count_distinct(x)             bigint (HyperLogLog; DuckDB's name)
//	approx_quantile(x, q), median(x)     double precision (DDSketch; q a constant in [0, 1]; median is q = 0.5)
//	max_n(x, n), min_n(x, n)             x's type[], the n greatest (least) values, greatest (least) first
//
// The issue that asked for this package says "sum of integers … is
// numeric": PostgreSQL's sum of smallint and integer is bigint, and only
// sum(bigint) is numeric; the package follows PostgreSQL. min and max take
// numbers, text, dates and timestamps; PostgreSQL has no min(boolean) or
// min(bytea), and neither has mr. DISTINCT works with every function of one
// argument (it is a no-op for min, max and approx_count_distinct, which
// then keep their small states).
//
// NULLs follow SQL: every function skips rows whose arguments are NULL
// (corr skips a row if either is); count(*) counts rows. The aggregate of
// no rows is NULL, except the counts, which are 0; sample variance and
// stddev of fewer than two rows are NULL.
//
// # Exact numbers
//
// Integers and numerics are summed exactly, in a 128-bit accumulator that
// moves to a big integer when it would overflow: sums never wrap. A sum of
// smallints or integers that does not fit a bigint is an error for that
// group (ErrOutOfRange), where PostgreSQL's int8 accumulator would wrap.
//
// numeric is exact end to end. A sum keeps the largest display scale of
// its inputs (1.5 + 2.25 = 3.75, 1.50 + 2.5 = 4.00), as PostgreSQL's does.
// avg, variance and stddev produce PostgreSQL's digits exactly, by its
// rules (see pgnumeric.go): avg is numeric_div(sum, N); the variances are
// numeric_div(N·Σx² − (Σx)², N·(N−1) or N²), or 0 when that numerator is 0;
// stddev is the square root of the variance at the variance's scale. The
// division's scale is select_div_scale's (at least 16 significant digits,
// no fewer than either operand's display scale, at most 1000), and every
// rounding is half away from zero of the exact value, as div_var and
// sqrt_var with round_var compute it. So avg(1, 2) is
// 1.5000000000000000, the avg of 0.00 and 0.00 is 0.00000000000000000000,
// and stddev(1, 2, 4) is 1.5275252316519467. NaN and ±Infinity inputs give
// PostgreSQL's results (a NaN anywhere makes sum and avg NaN, Infinity and
// -Infinity together give NaN, any of them make variance NaN). Numerics
// beyond PostgreSQL's range (131072 digits before the point, 16383 after)
// are refused by Add with ErrOutOfRange.
//
// # Floats
//
// PostgreSQL adds floats in row order, rounding at every step, so its
// results depend on that order. mr's float states are exact instead: a
// superaccumulator (fixed.go) holds Σx, and for variance, stddev and corr
// Σx², Σy², Σxy, exactly, as integers times a power of two; Result then
// computes the statistic from those exact sums and rounds once, to the
// nearest double (or real, for sum(real)), the square roots of stddev and
// corr included. mr's float results are therefore the correctly rounded
// values of the exact statistics of the input doubles, identical in every
// merge order, and may differ from PostgreSQL's in the last bits by
// PostgreSQL's accumulated rounding error (0.1 + 0.2 + 0.3 is 0.6 in mr,
// 0.6000000000000001 in PostgreSQL; PostgreSQL's sum(real) adds in single
// precision and drifts further). A sum whose exact value rounds beyond
// the type's range is an error for that group, as PostgreSQL's overflow
// check is, though PostgreSQL also fails when only a running sum overflows.
// corr's exact value is within [-1, 1], so mr's is too. A sum of negative
// zeros is 0 in mr and -0 in PostgreSQL.
//
// # Ties and ordering
//
// Values that compare equal may differ: 1.5 and 1.50, or 0 and -0.
// PostgreSQL's min and max keep whichever came last; mr breaks ties by a
// total order, so the result is a function of the input: of equal
// numerics, max keeps the one of greater scale and min the one of smaller
// scale, and of the zeros max keeps 0 and min -0, as IEEE 754's
// totalOrder orders them. count(DISTINCT x) counts equals once (1.0 =
// 1.00, -0 = 0, NaN = NaN, as PostgreSQL's equality has it); sum(DISTINCT
// x) and the others add the greatest of each set of equals. Texts compare
// bytewise: mr's min, max and max_n of text equal PostgreSQL's under
// COLLATE "C" and may differ under a linguistic collation (en_US), which mr
// cannot reproduce.
//
// # Sketches
//
// approx_count_distinct is a HyperLogLog sketch (github.com/axiomhq/
// hyperloglog) of precision 14: a relative standard error of 1.04/√2^14 ≈
// 0.81% (so 95% of estimates within 1.6%, 99.7% within 2.4%), and nearly
// exact below a few thousand distinct values, where the sketch is sparse
// (linear counting over 2^25 buckets). A sparse state takes a few bytes per
// distinct value, a dense one 16 KiB.
//
// approx_quantile(x, q) is a DDSketch (github.com/DataDog/sketches-go) of
// relative accuracy 1%: the value it returns for a rank is within 1% of the
// true value of that rank. Its Result is percentile_cont(q) WITHIN GROUP
// (ORDER BY x), PostgreSQL's interpolation between the values of ranks
// ⌊q·(N−1)⌋ and ⌈q·(N−1)⌉, with the sketch's values for those two ranks;
// so it is within 1% of percentile_cont whenever those two values have one
// sign (within 1% of the weighted sum of their magnitudes in any case).
// Values below 2.2e-308 in magnitude count as 0. A state takes about
// ln(max/min)/0.02 bins of 8 bytes for positive values from min to max.
// t-digest is not used: its result depends on merge order.
//
// Neither library's encoding is canonical as it comes. A HyperLogLog
// sketch's sparse form keeps fresh hashes in a hash set whose order, and
// whether they have been merged into the sorted list yet, depend on
// history; mr compacts a sparse sketch before encoding it, after which the
// encoding is a function of the set of hashes (hll.go explains why the
// sparse/dense switch is one too). A DDSketch's dense stores lay their bins
// out depending on history, but their encoding covers exactly the
// nonempty bins, with integer counts; mr uses dense stores, omits the index
// mapping (it is fixed), and decodes through checks of its own. The
// canonical tests (TestHLL_Canonical, TestQuantile_Canonical) prove both.
//
// # Encoding
//
// Every state encodes as a format version byte (1), a state tag byte, and
// the state's payload, which is documented on each state type: counts are
// uvarints, numerics a form byte, a display scale and a big-endian
// magnitude, exact float sums a base and 64-bit limbs, sets and top-n lists
// their values in a canonical order, the sketches the libraries' own
// encodings of canonicalized sketches. Decode reads a payload, checks every
// field (ranges, orders, the libraries' structure), and then encodes the
// decoded state again and requires the same bytes, so it accepts canonical
// encodings only; anything else is an error wrapping ErrCorrupt, never a
// panic (FuzzDecode). A change to any encoding gets a new format version.
//
// # Cost
//
// Add allocates nothing for numbers, booleans, dates and timestamps, in the
// common cases: integers, numerics whose coefficients fit 64 bits, finite
// doubles, sketches once their bins exist. A set (count(DISTINCT x))
// allocates once per new value. The benchmarks in bench_test.go report
// ns/op and allocations of Add and Merge.
package agg
