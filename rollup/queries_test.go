package rollup_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mrengine/mr/internal/runtest"
	"github.com/mrengine/mr/rollup"
)

// TestParse_Queries parses the queries in testdata/queries (the ten
// db-benchmark group-by questions, the orders example of the issue, the
// daily_rollup job) and compares what Parse understood with NAME.golden.
func TestParse_Queries(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join("testdata", "queries", "*.sql"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no queries in testdata/queries: %v", err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".sql")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			q, err := rollup.Parse(string(src))
			if err != nil {
				t.Fatal(err)
			}
			checkQuery(t, q)
			runtest.CheckGolden(t, filepath.Join("queries", name+".golden"), dump(q)+"\n")
		})
	}
}

// BenchmarkParse parses the orders example.
func BenchmarkParse(b *testing.B) {
	src, err := os.ReadFile(filepath.Join("testdata", "queries", "orders-monthly.sql"))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(src)))
	for b.Loop() {
		if _, err := rollup.Parse(string(src)); err != nil {
			b.Fatal(err)
		}
	}
}
