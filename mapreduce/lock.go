package mapreduce

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// ErrRunInUse is returned by Open for a run that another process has open.
var ErrRunInUse = errors.New("run in use")

// lockRun takes an exclusive lock on the run directory dir (creating it),
// so that two processes never run the same run at once: one would delete
// the other's uncommitted shuffle files and interleave its DLQ. The lock
// is an flock on dir/lock, which the kernel releases when the process
// dies, however it dies.
func lockRun(dir string) (unlock func() error, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s is held by process %s; wait for it to finish, or stop it", ErrRunInUse, filepath.Base(dir), strings.TrimSpace(string(holder)))
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	f.Truncate(0)
	f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return f.Close, nil // closing the file releases the lock
}
