package benchmarks

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"github.com/mrengine/mr/internal/eventgen"
	"github.com/mrengine/mr/internal/pgtest"
	"github.com/mrengine/mr/mapreduce"
)

// The PostgreSQL benchmarks run against the throwaway cluster of
// internal/pgtest (or MR_TEST_DSN), started on first use and stopped here.
func TestMain(m *testing.M) { pgtest.Main(m) }

// rows10M turns on the 10,000,000-row cases. They are off by default
// because seeding that many rows (COPY, then VACUUM ANALYZE) takes minutes
// and the in-database baseline alone takes a minute or more.
var rows10M = flag.Bool("mr.rows10m", false, "also run the 10,000,000-row cases (seeding them takes minutes)")

// rows30M turns on BenchmarkScaling's 30,000,000-row case, which takes
// several minutes to seed and to run, and about 5 GB of disk.
var rows30M = flag.Bool("mr.rows30m", false, "also run BenchmarkScaling's 30,000,000-row case (minutes, about 5 GB of disk)")

// Input sizes of the row-count axes.
const (
	smallRows = 100_000    // runs under -short too
	heavyRows = 1_000_000  // skipped under -short
	rows3M    = 3_000_000  // scaling only; skipped under -short
	hugeRows  = 10_000_000 // only with -mr.rows10m
	giantRows = 30_000_000 // scaling only; only with -mr.rows30m
)

// skipUnlessAllowed skips a case of rows input rows that -short or the
// absence of -mr.rows10m rules out.
func skipUnlessAllowed(b *testing.B, rows int64) {
	b.Helper()
	switch {
	case rows >= giantRows && !*rows30M:
		b.Skipf("%d rows: only with -mr.rows30m", rows)
	case rows >= hugeRows && rows < giantRows && !*rows10M:
		b.Skipf("%d rows: only with -mr.rows10m (go test ./benchmarks -run '^$' -bench … -mr.rows10m)", rows)
	case rows >= heavyRows && testing.Short():
		b.Skipf("%d rows: not under -short", rows)
	}
}

// eventsConfig is the generator configuration of every benchmark input of
// rows rows: eventgen's defaults (10,000 accounts, 20 categories, 90 days)
// with one poison payload in 10,000, so that the DLQ path is exercised
// as it is in production, but does not dominate.
func eventsConfig(rows int64) eventgen.Config {
	return eventgen.Config{Rows: rows, Seed: 1, PoisonRate: 0.0001}
}

// quietLogger drops the engine's log lines, which would otherwise land in
// the middle of the benchmark output.
func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// benchConfig is the engine's default configuration for one benchmark:
// a fresh run each time, in a temporary directory, without logs.
func benchConfig(b *testing.B) mapreduce.Config {
	cfg := mapreduce.DefaultConfig()
	cfg.Workdir, cfg.Fresh, cfg.Logger = b.TempDir(), true, quietLogger()
	return cfg
}

// rowsName is the rows=N part of a benchmark name.
func rowsName(rows int64) string { return fmt.Sprintf("rows=%d", rows) }
