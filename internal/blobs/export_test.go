package blobs

import (
	"os"
	"testing"
)

// OnSync makes every fsync of a file bucket call f first, with the path of
// the file or directory and whether it is a directory, until t ends. A
// test that calls it must not run in parallel.
func OnSync(t testing.TB, f func(path string, dir bool)) {
	file, dir := syncFileFunc, syncDirFunc
	syncFileFunc = func(fl *os.File) error {
		f(fl.Name(), false)
		return file(fl)
	}
	syncDirFunc = func(path string) error {
		f(path, true)
		return dir(path)
	}
	t.Cleanup(func() { syncFileFunc, syncDirFunc = file, dir })
}
