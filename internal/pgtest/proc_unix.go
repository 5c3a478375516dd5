//go:build unix

package pgtest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"syscall"
)

// runAs is the OS user that initdb and postgres run as when the tests run as
// root, which PostgreSQL refuses.
type runAs struct {
	name     string
	uid, gid uint32
}

// serverRunAs returns nil when the current user can run the server, and
// serverUser when running as root.
func serverRunAs() (*runAs, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup(serverUser)
	if err != nil {
		return nil, fmt.Errorf("running as root, which PostgreSQL refuses, so pgtest runs it as the OS user %q, but: %w "+
			"(installing the postgresql package creates that user; or run the tests as a normal user)", serverUser, err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("OS user %q: %w", serverUser, err)
	}
	return &runAs{name: u.Username, uid: uint32(uid), gid: uint32(gid)}, nil
}

// apply makes cmd run as r (if not nil) in a process group of its own, so
// that a terminal's ^C reaches only the test binary, which stops the server
// in order. A server also gets SIGQUIT (immediate shutdown) when the test
// binary dies, where the OS allows.
func (r *runAs) apply(cmd *exec.Cmd, server bool) {
	attr := &syscall.SysProcAttr{Setpgid: true}
	if r != nil {
		attr.Credential = &syscall.Credential{Uid: r.uid, Gid: r.gid, Groups: []uint32{}}
	}
	if server {
		setParentDeathSignal(attr)
	}
	cmd.SysProcAttr = attr
}

// chown gives path to r, so that initdb can create the data directory and
// postgres its socket there.
func (r *runAs) chown(path string) error {
	if r == nil {
		return nil
	}
	return os.Chown(path, int(r.uid), int(r.gid))
}

// describe says whom a command ran as, for error messages.
func (r *runAs) describe() string {
	if r == nil {
		return ""
	}
	return " (as OS user " + r.name + ")"
}

// lockNew creates the lock file at path and locks it. The lock lasts as long
// as the returned file stays open in this process (the descriptor is
// close-on-exec, so the server never inherits it) and ends when the process
// dies, however it dies.
func lockNew(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if ok, err := tryLock(f); !ok {
		f.Close()
		return nil, errors.Join(errors.New("already locked"), err)
	}
	return f, nil
}

// tryLock takes f's exclusive lock without waiting; false means another
// process holds it.
func tryLock(f *os.File) (bool, error) {
	err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return false, nil
	}
	return err == nil, err
}

// processAlive reports whether a process with pid exists (perhaps someone
// else's).
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// quitProcess asks a postmaster for an immediate shutdown.
func quitProcess(pid int) error { return syscall.Kill(pid, syscall.SIGQUIT) }

func killProcess(pid int) error { return syscall.Kill(pid, syscall.SIGKILL) }
