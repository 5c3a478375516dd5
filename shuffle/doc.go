// Package shuffle moves map output to the reducers: it lays (key, value)
// records out as Arrow columns, hashes each key (seeded xxhash) to one of R
// buckets, buffers each bucket's records in Arrow builders and writes one
// spill file per non-empty bucket, and reads a bucket's committed files
// back for the reduce-side merge.
//
// Schematically:
//
//	map side:     Writer.Hash → Key.Encode → Writer.Record → Key/Value.Encode … Flush → []File
//	reduce side:  Read([]File) → RecordDecoder → Key/Value.Decode …
//
// Readers never list storage to find their inputs: they read the files a
// committed checkpoint manifest names (see MapKey for how files are named).
//
// Combining the values of equal keys happens in the engine (package
// mapreduce), before records reach a Writer and after Read yields them,
// where the key and value types are known. The field model (Type, Field,
// Date, Encoder, Decoder) lives here because it is the layout of a shuffle
// record; package mapreduce re-exports it for job authors.
package shuffle
