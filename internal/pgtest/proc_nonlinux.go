//go:build unix && !linux

package pgtest

import "syscall"

// setParentDeathSignal does nothing: only Linux has a parent-death signal.
// Stale clusters are stopped at the next start instead.
func setParentDeathSignal(*syscall.SysProcAttr) {}

// processCmdline cannot know the command line of another process here.
func processCmdline(int) (string, bool) { return "", false }
