//go:build race

package spill

func init() { raceEnabled = true }
