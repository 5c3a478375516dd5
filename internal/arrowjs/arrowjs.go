// Package arrowjs reads Arrow IPC files with Apache Arrow JS (npm package
// apache-arrow, with the fzstd codec registered for zstd), an Arrow
// implementation independent of arrow-go, so that tests can prove the
// files mr writes are standard Arrow that any reader opens.
//
// It runs read.mjs, next to this file, with node. The node modules are
// pinned by package-lock.json here; the first Read of a test binary
// installs them when they are missing (npm ci, under a file lock, since
// several test binaries run at once), so go test needs no set-up step
// but Node.js itself. Without node or npm, or when the install fails, a
// test that calls Read is skipped with a hint, except under CI=true, where
// it fails.
package arrowjs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/gofrs/flock"

	"github.com/mrengine/mr/internal/testserver"
)

// Table is one file as Arrow JS reads it.
type Table struct {
	Path    string
	Fields  []Field
	Batches int // record batches
	// Rows holds every row in file order, one value per field: nil for a
	// null, bool, string (Utf8; Binary as lower-case hex), int64 (Int*, Date32 in days, Timestamp in
	// ticks of its unit, Time, Duration), uint64 (a Uint64 past int64),
	// float64 (Float*; -0 and NaN kept), or for other types the string
	// Arrow JS makes of the value.
	Rows [][]any
}

// Field is a column of a Table: Type is Arrow JS's name for its type, e.g.
// "Int64", "Float64", "Utf8", "Bool", "Date32<DAY>",
// "Timestamp<MICROSECOND, UTC>".
type Field struct {
	Name     string
	Type     string
	Nullable bool
}

// Read returns, for each file at paths, its schema and all rows as Arrow JS
// reads them. It fails the test if Arrow JS cannot read one.
func Read(t testing.TB, paths ...string) []Table {
	t.Helper()
	tables, err := read(t, paths)
	if err != nil {
		t.Fatal(err)
	}
	return tables
}

// ReadFile is Read for one file, returning Arrow JS's error (its message,
// e.g. "TypeError: …") instead of failing the test.
func ReadFile(t testing.TB, path string) (Table, error) {
	t.Helper()
	tables, err := read(t, []string{path})
	if err != nil {
		return Table{}, err
	}
	return tables[0], nil
}

var (
	findOnce            sync.Once
	nodePath, scriptDir string
	findErr             error
)

// setup returns the node binary and the directory of read.mjs, or why they
// cannot be used.
func setup() (node, dir string, err error) {
	findOnce.Do(func() { nodePath, scriptDir, findErr = find() })
	return nodePath, scriptDir, findErr
}

func find() (node, dir string, err error) {
	_, file, _, ok := runtime.Caller(0)
	dir = filepath.Dir(file)
	if _, err := os.Stat(filepath.Join(dir, "read.mjs")); !ok || err != nil {
		// Built with -trimpath: the tests run in their package's directory.
		if dir, err = moduleDir(); err != nil {
			return "", "", err
		}
		dir = filepath.Join(dir, "internal", "arrowjs")
	}
	const hint = "install Node.js (18 or later) and npm, or run: npm ci --prefix internal/arrowjs"
	if node, err = exec.LookPath("node"); err != nil {
		return "", "", fmt.Errorf("arrowjs: no node to run Apache Arrow JS (%v): %s", err, hint)
	}
	if !installed(dir) {
		if err := install(dir); err != nil {
			return "", "", fmt.Errorf("arrowjs: installing the node modules in %s: %v: %s", dir, err, hint)
		}
	}
	return node, dir, nil
}

// modules are the node modules read.mjs imports.
var modules = []string{"apache-arrow", "fzstd"}

func installed(dir string) bool {
	for _, mod := range modules {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", mod, "package.json")); err != nil {
			return false
		}
	}
	return true
}

// install runs npm ci in dir, holding a file lock so that test binaries
// running at once install once.
func install(dir string) error {
	npm, err := exec.LookPath("npm")
	if err != nil {
		return err
	}
	lock := flock.New(filepath.Join(dir, ".install.lock"))
	if err := lock.Lock(); err != nil {
		return err
	}
	defer lock.Close()
	if installed(dir) { // by the binary that held the lock before
		return nil
	}
	out, err := exec.Command(npm, "ci", "--no-audit", "--no-fund", "--prefix", dir).CombinedOutput()
	if err != nil {
		return fmt.Errorf("npm ci: %v\n%s", err, out)
	}
	return nil
}

// moduleDir returns the directory of the go.mod above the working directory.
func moduleDir() (string, error) {
	dir, err := os.Getwd()
	for ; err == nil; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		if dir == filepath.Dir(dir) {
			return "", errors.New("arrowjs: no go.mod above the working directory")
		}
	}
	return "", err
}

func read(t testing.TB, paths []string) ([]Table, error) {
	t.Helper()
	node, dir, err := setup()
	if err != nil {
		if testserver.InCI() {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	args := []string{filepath.Join(dir, "read.mjs")}
	for _, p := range paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, err
		}
		args = append(args, abs)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(node, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("arrowjs: Arrow JS cannot read %s: %s (%v)", strings.Join(paths, " "), jsError(stderr.String()), err)
	}
	var raw []struct {
		Fields  []Field
		Batches int
		Rows    [][]any
	}
	if err := json.Unmarshal(stdout.Bytes(), &raw); err != nil {
		return nil, fmt.Errorf("arrowjs: read.mjs printed bad JSON: %v", err)
	}
	tables := make([]Table, len(raw))
	for i, r := range raw {
		tables[i] = Table{Path: paths[i], Fields: r.Fields, Batches: r.Batches, Rows: r.Rows}
		for _, row := range r.Rows {
			for j, v := range row {
				if row[j], err = convert(r.Fields[j].Type, v); err != nil {
					return nil, fmt.Errorf("arrowjs: %s: column %s: %v", paths[i], r.Fields[j].Name, err)
				}
			}
		}
	}
	return tables, nil
}

// jsError returns the line of a node error output that names the error.
func jsError(stderr string) string {
	for _, line := range strings.Split(stderr, "\n") {
		if strings.Contains(line, "Error") {
			return strings.TrimSpace(line)
		}
	}
	return strings.TrimSpace(stderr)
}

// convert turns a number read.mjs printed as a string into a Go number.
func convert(typ string, v any) (any, error) {
	s, ok := v.(string)
	if !ok {
		return v, nil
	}
	switch {
	case strings.HasPrefix(typ, "Interval"):
		return s, nil
	case strings.HasPrefix(typ, "Float"):
		return strconv.ParseFloat(s, 64)
	case strings.HasPrefix(typ, "Uint64"):
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return n, nil
		}
		return strconv.ParseUint(s, 10, 64)
	case strings.HasPrefix(typ, "Int"), strings.HasPrefix(typ, "Uint"), strings.HasPrefix(typ, "Date"),
		strings.HasPrefix(typ, "Timestamp"), strings.HasPrefix(typ, "Time"), strings.HasPrefix(typ, "Duration"):
		return strconv.ParseInt(s, 10, 64)
	}
	return s, nil
}
