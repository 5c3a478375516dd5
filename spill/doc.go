// Package spill writes and reads spill files: zstd-compressed Arrow IPC
// files that are committed atomically and checksummed, so a reader never
// mistakes a torn, truncated or damaged file for data.
//
// Schematically:
//
//	Create(path, schema) → Write(rec)* → Commit() File   // or Abort()
//	Open(path) → Record(i)* → Close()
//
// # Layout
//
// A spill file is an Arrow IPC file followed by a 16-byte trailer:
//
//	offset    size  contents
//	0         N     Arrow IPC file format: "ARROW1", schema, record batches, footer, "ARROW1"
//	N         8     checksum: XXH64 (seed 0) of bytes [0, N), little-endian uint64
//	N+8       8     magic: "MRSPILL1"
//
// The file is N+16 bytes. Removing the trailer (head -c -16 f.arrow) leaves a
// plain Arrow file that any Arrow implementation reads (pyarrow.ipc.open_file).
//
// The body uses the IPC file format, not the stream format, because its
// footer indexes every record batch: a truncated body has no footer and is
// rejected instead of read as a shorter stream. Record batch buffers are
// compressed by Arrow's own IPC body compression with codec ZSTD (each
// buffer is prefixed by its uncompressed length as an int64); there is no
// second compression layer, so the body stays standard Arrow. Every record
// batch has the schema given to [Create].
//
// # Naming
//
// The final path is the caller's choice; the engine names shuffle files
// shuffle/b<r>/p<part>-<seq>.arrow and spill does not interpret names.
// While a file is being written it lives next to its final path as
//
//	.<base>.tmp-<random>
//
// in the same directory, so the commit is a rename within one file system,
// and the leading dot keeps it out of ls and out of globs like *.arrow.
// Temp files are never read; any left over after a crash are garbage.
// Files are created with mode 0600, as by os.CreateTemp.
//
// # Checksum
//
// The checksum is XXH64 with seed 0 (github.com/cespare/xxhash/v2) of the
// Arrow bytes exactly, computed as they are written, never by re-reading.
// It detects accidental damage (bit rot, torn or partial writes,
// truncation, stray writes), not deliberate forgery. It is also returned in
// [File.Checksum], so a checkpoint manifest can pin the exact contents.
//
// # Write protocol
//
//  1. [Create] makes the temp file in the directory of path.
//  2. [Writer.Write] appends one IPC record batch message per record.
//  3. [Writer.Commit] writes the IPC footer and the trailer, fsyncs the
//     file, closes it, renames it to path (replacing any file there) and
//     fsyncs the directory, so the name itself is durable.
//  4. Only after Commit returns a nil error may the caller name the file in
//     a checkpoint. That step is the engine's, not this package's: a crash
//     at any earlier point leaves a temp file, or a file at path that no
//     checkpoint names, and a resumed run ignores or deletes it.
//
// [Writer.Abort] removes the file (the temp file, or the renamed one if
// Commit failed after the rename). Any failed Write or Commit leaves the
// Writer unusable, and the caller must Abort it; Abort after a successful
// Commit does nothing, so defer w.Abort() right after Create is safe.
//
// # Read protocol
//
// [Open] reads the whole file into memory (the engine bounds spill file
// size by its memory budget), then checks, in order: the size is at least
// 16 bytes, the magic, the checksum, and that Arrow can parse the footer
// and schema. [Reader.Record] decodes one record batch on demand. Every
// failure of these checks, and any Arrow decoding error, wraps [ErrCorrupt]
// and names the file. A missing file is not corrupt: its error wraps
// [fs.ErrNotExist].
//
// The checksum catches damage on disk, but not a bit flipped in the
// writer's memory before the bytes were hashed, and arrow-go trusts the
// sizes in the file. So the reader also guards against sizes that would
// take the process down instead of failing: flatbuffers vector lengths in
// the footer and message headers must fit their buffers, and decoding one
// record may allocate at most [WithMaxRecordSize] bytes, else
// [ErrTooLarge].
//
// # Memory
//
// Both sides use the allocator given by [WithAllocator]. The Writer uses it
// for Arrow's encoding scratch (compressed copies of buffers), all released
// before Write returns. The Reader keeps the file bytes on the Go heap until
// Close; Record copies one message out of them into allocator memory and
// decompresses each buffer into a new allocator buffer. A returned record
// therefore owns its memory: it stays valid after the Reader is closed, and
// the caller must Release it.
package spill
