// Package testserver holds what the test harnesses that start throwaway
// servers (internal/pgtest, internal/s3test) share: the server's process,
// a free port, the tail of a server's log for messages, and the name of
// the test binary's package for the names of what they create.
package testserver

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Tail returns the last lines of a server's or a command's output, for
// error messages.
func Tail(out []byte) string {
	const max = 2000
	out = bytes.TrimSpace(out)
	if len(out) > max {
		out = out[len(out)-max:]
		if i := bytes.IndexByte(out, '\n'); i >= 0 {
			out = out[i+1:]
		}
	}
	return string(out)
}

// PackageName returns the package of the test binary arg0, lowercased,
// with every byte but a-z and 0-9 replaced by sep: "/tmp/go-build…/
// sources.test" gives "sources".
func PackageName(arg0 string, sep byte) string {
	name := strings.ToLower(filepath.Base(arg0))
	name = strings.TrimSuffix(name, ".exe")
	name = strings.TrimSuffix(name, ".test")
	var b strings.Builder
	for _, r := range name {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte(sep)
		}
	}
	return b.String()
}

// A Process is a server process that Start started.
type Process struct {
	Cmd    *exec.Cmd
	exited chan struct{} // closed when the process has exited; err is set
	err    error
}

// Start starts cmd in a goroutine that owns it and stays locked to the OS
// thread that started it until it exits: Linux's parent-death signal
// (which the harnesses set, so that a killed test binary takes its servers
// with it) is tied to that thread, not to the process.
func Start(cmd *exec.Cmd) (*Process, error) {
	p := &Process{Cmd: cmd, exited: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		p.err = cmd.Wait()
		close(p.exited)
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return p, nil
}

// Exited is closed once the process has exited; Err then says how.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Err is the process's exit, once Exited is closed.
func (p *Process) Err() error { return p.err }

// Stop sends the process sig and waits for it to exit, killing it after
// timeout; name names it in errors.
func (p *Process) Stop(sig os.Signal, timeout time.Duration, name string) error {
	if err := p.Cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signal %s: %w", name, err)
	}
	select {
	case <-p.exited:
		return nil
	case <-time.After(timeout):
	}
	_ = p.Cmd.Process.Kill()
	<-p.exited
	return fmt.Errorf("%s did not stop within %s of %s; killed", name, timeout, sig)
}

// InCI reports whether the tests run under CI (CI=true): there, a server
// or tool a test needs and cannot find fails the test instead of skipping
// it, so that CI never goes green by skipping.
func InCI() bool {
	ci, _ := strconv.ParseBool(os.Getenv("CI"))
	return ci
}
