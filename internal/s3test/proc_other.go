//go:build !linux

package s3test

import "syscall"

// sysProcAttr changes nothing: only Linux has a parent-death signal, so
// elsewhere a gateway outlives a test binary that is killed.
func sysProcAttr() *syscall.SysProcAttr { return nil }
