//go:build unix

package crashpoint

import "syscall"

// pause stops the process with SIGSTOP; it returns once SIGCONT resumes it.
func pause() { syscall.Kill(syscall.Getpid(), syscall.SIGSTOP) }
