//go:build !linux

package spill

// limitAddressSpace is Linux-only; TestDecode_Defences runs its child only
// there.
func limitAddressSpace(uint64) error { return nil }
