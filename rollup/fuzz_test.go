package rollup_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/mrengine/mr/rollup"
)

// FuzzParse checks that Parse returns a *SyntaxError that points into
// the input, or a Query that checkQuery accepts (its pieces are slices of
// the input, and its String parses back to the same), and never panics.
// The seeds are every query of the tests.
func FuzzParse(f *testing.F) {
	for _, tt := range parseTests {
		f.Add(tt.sql)
	}
	for _, pattern := range []string{"queries/*.sql", "errors/*/query.sql"} {
		files, err := filepath.Glob(filepath.Join("testdata", pattern))
		if err != nil {
			f.Fatal(err)
		}
		for _, file := range files {
			src, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(string(src))
		}
	}
	f.Fuzz(func(t *testing.T, sql string) {
		q, err := rollup.Parse(sql)
		if err != nil {
			checkSyntaxError(t, sql, err)
			return
		}
		checkQuery(t, q)
	})
}
