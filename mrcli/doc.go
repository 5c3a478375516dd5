// Package mrcli is the mr command line: a MapReduce aggregation engine
// that turns a large table into aggregates with map/reduce functions
// written in Go, resumably. cmd/mr is its five-line main; a binary with
// jobs of its own is another.
//
// The command is a thin layer over package mapreduce: each subcommand (one
// file each: run.go, rollup.go, demo.go, jobs.go, status.go, runs.go,
// gc.go, dlq.go, inspect.go) parses its flags, fills a mapreduce.Config and
// calls the engine. Main alone turns errors into exit codes:
//
//	0  done
//	1  failed; running the same command again resumes the run
//	2  usage error: unknown job or command, bad or missing flag
//	3  done, but more rows failed than --max-failure-rate allows
//
// A binary with its own jobs is five lines: import the packages that
// register them (see package jobs) and call Main:
//
//	package main
//
//	import (
//		"github.com/mrengine/mr/mrcli"
//		_ "example.com/myjobs"
//	)
//
//	func main() { mrcli.Main() }
package mrcli
