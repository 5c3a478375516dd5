//go:build race

package spill_test

func init() { raceEnabled = true }
