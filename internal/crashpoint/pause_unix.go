//go:build unix

package crashpoint

import (
	"os"
	"os/signal"
	"syscall"
)

// pause stops the process with SIGSTOP and returns once SIGCONT resumes
// it. The stop is asynchronous (the kernel may stop the process a moment
// after kill returns), so the caller waits for SIGCONT itself: nothing
// after the point runs before the process is resumed.
func pause() {
	resumed := make(chan os.Signal, 1)
	signal.Notify(resumed, syscall.SIGCONT)
	defer signal.Stop(resumed)
	syscall.Kill(syscall.Getpid(), syscall.SIGSTOP)
	<-resumed
}
