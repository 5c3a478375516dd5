package s3test

import "syscall"

// sysProcAttr puts the gateway in a process group of its own, so that a
// terminal's ^C reaches only the test binary, which stops it in order, and
// has the kernel kill it when the thread that started it exits: that
// thread stays locked for the gateway's life, so that is when the test
// binary dies, even by SIGKILL or a go test timeout, which would otherwise
// leave the gateway holding its port.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
