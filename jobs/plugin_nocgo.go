//go:build !cgo

package jobs

// cgoEnabled reports whether the binary was built with cgo, which package
// plugin needs.
const cgoEnabled = false
