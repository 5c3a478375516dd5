// Package jobs is the job registry and holds the built-in jobs.
//
// # Registering a job
//
// Jobs register themselves from init, the way database/sql drivers do:
//
//	func init() {
//		jobs.Register(mapreduce.Job[Key, Totals]{Name: "my_rollup", …})
//	}
//
// and a binary that imports the package can run them by name. A job's Name
// is its stable identity: run ids derive from it, so renaming a job starts
// its runs over. Register panics on an invalid job or a name that is taken:
// in a binary both are programming errors, found at start-up.
// TryRegister returns the error instead.
//
// # Plugins
//
// A stock mr binary can also run jobs it was not built with, from a Go
// plugin: a package main whose init (or that of a package it imports)
// calls Register exactly as above, built with
//
//	go build -buildmode=plugin -o myjobs.so ./myjobs
//
// and loaded with LoadPlugin (mr run --plugin myjobs.so). The contract:
//
//   - While LoadPlugin runs the plugin's init functions, Register does not
//     panic: LoadPlugin collects its errors (a job name that is taken, by
//     the binary or by another plugin, or an invalid job) and returns them
//     as one *PluginError. A panic of the plugin's init is such an error
//     too, with its stack, and so is a plugin that registers no job at all.
//     A plugin that fails registers none of its jobs. Every job registered
//     while a plugin loads counts as the plugin's: load plugins at
//     start-up, before other goroutines register jobs.
//   - LoadPlugin returns the names of the jobs the plugin registered. It
//     loads one plugin at a time: a call while another load runs (from
//     another goroutine, or from a plugin's init) is an error. Loading the
//     same file again returns the first outcome: Go cannot unload a plugin
//     or run its init twice.
//   - Go loads a plugin only if every package it shares with the binary is
//     the same version built the same way: the same Go toolchain, the same
//     github.com/mrengine/mr module version (and of every other shared
//     module) and the same build flags (-race, -trimpath, -tags, -gcflags).
//     When they differ, the error wraps ErrPluginMismatch and says which
//     differ; go version -m shows both files' versions and flags.
//   - Plugins need a binary built with cgo on Linux, FreeBSD or macOS.
//     Elsewhere LoadPlugin fails with ErrPluginsUnsupported; compile the
//     jobs into the binary instead, by importing their package from its
//     main.
package jobs
