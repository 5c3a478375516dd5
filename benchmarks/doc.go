// Package benchmarks measures mr end to end and stage by stage, next to
// the alternatives a user would otherwise reach for, in the same run:
//
//	go test ./benchmarks -run '^$' -bench . -benchtime 1x
//
// Heavy cases (a million rows and more) skip under -short. Inputs come from
// internal/eventgen, the generator the tests use, and seeded files are kept
// in the system's temp directory between runs.
package benchmarks
