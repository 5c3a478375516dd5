// Command duplicate is a Go plugin for the mrcli tests whose job takes the
// name of a built-in one: loading it must fail with a clear error, not
// panic.
package main

import "github.com/mrengine/mr/jobs"

func init() { jobs.Register(jobs.DailyRollup) }

func main() {}
