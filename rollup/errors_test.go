package rollup_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/mrengine/mr/internal/runtest"
	"github.com/mrengine/mr/rollup"
)

// TestParse_Errors parses each bad input in testdata/errors/NAME/query.sql
// (its last newline dropped) and compares the error's message with
// testdata/errors/NAME/error.golden; go test -update rewrites them.
func TestParse_Errors(t *testing.T) {
	t.Parallel()
	dirs, err := os.ReadDir(filepath.Join("testdata", "errors"))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		t.Run(d.Name(), func(t *testing.T) {
			t.Parallel()
			src, err := os.ReadFile(filepath.Join("testdata", "errors", d.Name(), "query.sql"))
			if err != nil {
				t.Fatal(err)
			}
			sql := strings.TrimSuffix(string(src), "\n")
			q, err := rollup.Parse(sql)
			if err == nil {
				t.Fatalf("Parse returned no error but\n%s", dump(q))
			}
			checkSyntaxError(t, sql, err)
			runtest.CheckGolden(t, filepath.Join("errors", d.Name(), "error.golden"), err.Error()+"\n")
		})
	}
}

// checkSyntaxError checks that err is a *SyntaxError whose position is
// inside sql and agrees with its line and column.
func checkSyntaxError(t testing.TB, sql string, err error) {
	t.Helper()
	var se *rollup.SyntaxError
	if !errors.As(err, &se) {
		t.Fatalf("error %T %v is not a *SyntaxError", err, err)
	}
	if se.Pos < 0 || se.Pos > se.End || se.End > len(sql) {
		t.Fatalf("error at [%d, %d) in a query of %d bytes: %v", se.Pos, se.End, len(sql), err)
	}
	before := sql[:se.Pos]
	line := 1 + strings.Count(before, "\n")
	col := 1 + utf8.RuneCountInString(before[strings.LastIndexByte(before, '\n')+1:])
	if se.Line != line || se.Col != col {
		t.Fatalf("error at line %d, column %d; its position %d is line %d, column %d", se.Line, se.Col, se.Pos, line, col)
	}
	if se.Msg == "" || strings.Contains(se.Msg, "\n") {
		t.Fatalf("message %q is empty or more than one line", se.Msg)
	}
	if !strings.HasPrefix(se.Error(), "line ") || strings.Count(se.Error(), "\n") < 2 {
		t.Fatalf("Error() is not line …, the query's line and a caret:\n%s", se.Error())
	}
}
