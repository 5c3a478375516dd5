package spill

import "syscall"

// limitAddressSpace makes allocations past n bytes of address space fail,
// so that TestDecode_Defences' child dies fast instead of swapping.
func limitAddressSpace(n uint64) error {
	return syscall.Setrlimit(syscall.RLIMIT_AS, &syscall.Rlimit{Cur: n, Max: n})
}
