package pgtest

import (
	"bytes"
	"os"
	"strconv"
	"syscall"
)

// setParentDeathSignal makes the kernel send the server SIGQUIT (immediate
// shutdown) when the thread that started it exits. The goroutine that starts
// the server stays locked to its thread for the server's life, so that is
// when the test binary dies, even by SIGKILL. (Go sets it after switching
// credentials, which would clear it.)
func setParentDeathSignal(attr *syscall.SysProcAttr) { attr.Pdeathsig = syscall.SIGQUIT }

// processCmdline returns the command line of pid, arguments separated by
// spaces; ok is false where it cannot be known.
func processCmdline(pid int) (cmdline string, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return "", false
	}
	return string(bytes.ReplaceAll(b, []byte{0}, []byte{' '})), true
}
