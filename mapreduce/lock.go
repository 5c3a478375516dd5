package mapreduce

import (
	"cmp"
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
			pid := cmp.Or(strings.TrimSpace(string(holder)), "unknown") // empty while the holder writes it
			return nil, fmt.Errorf("%w: %s is held by process %s; wait for it to finish, or stop it", ErrRunInUse, filepath.Base(dir), pid)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	// The pid is only for the message above; failing to write it is harmless.
	f.Truncate(0)
	f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return f.Close, nil // closing the file releases the lock
}
