// Package spill writes and reads spill files: standard zstd-compressed
// Arrow IPC files, committed atomically to a bucket (internal/blobs) and
// pinned by size and checksum in the engine's manifests, so a reader never
// mistakes a torn, truncated or damaged file for data.
//
// Schematically:
//
//	Create(ctx, bucket, key, schema) → Write(rec)* → Commit() File   // or Abort()
//	Open(ctx, bucket, File) → Record(i)* → Close()                   // File from a manifest
//	Decode(name, bytes) → Record(i)* → Close()                        // no manifest: mr inspect
//
// # Layout
//
// A spill file is exactly an Arrow IPC file, and nothing else:
//
//	"ARROW1" pad, schema message, record batch message*, footer, int32 footer size, "ARROW1"
//
// so any Arrow implementation reads it (pyarrow.ipc.open_file, Arrow JS's
// tableFromIPC with a zstd codec registered; the tests prove the latter).
// It uses the IPC file format, not the stream format, because its footer
// indexes every record batch: a truncated file has no footer and is
// rejected instead of read as a shorter stream. Record batch buffers are
// compressed by Arrow's own IPC body compression with codec ZSTD (each
// buffer is prefixed by its uncompressed length as an int64, or by -1 and
// stored as it is when zstd does not make it smaller); there is no second
// compression layer. spill writes these files itself (ipc.go), with one
// zstd encoder shared by every Writer, and reads them with arrow-go. Every record batch has the schema given to
// [Create]. Nothing follows the footer: until issue 7 a 16-byte trailer
// (checksum, "MRSPILL1") did, and stock Arrow readers could not open the
// files; [Decode] rejects such a file as corrupt.
//
// # Naming
//
// The key is the caller's choice; the engine names shuffle files
// "<run>/shuffle/b<r>/p<part>-<seq>-<attempt>.arrow", unique to the attempt
// that writes them, and spill does not interpret keys. While a file is
// being written it is a blobs temp file, invisible under the key (for a
// file bucket, "<path>.<hex>.tmp" next to the final path, mode 0600).
// Temp files are never read; any left over after a crash are garbage that
// List shows for collection.
//
// # Checksum
//
// [File.Checksum] is XXH64 with seed 0 (github.com/cespare/xxhash/v2) of
// the file's bytes, all of them, computed as the encoder writes them, never
// by re-reading; [File.Size] is their count. The file does not carry them:
// the engine's committed manifest pins both, and [Open] checks the bytes it
// reads against the File it is given before Arrow parses anything. This
// detects accidental damage (bit rot, torn or partial writes, truncation, a
// file overwritten by another attempt), not deliberate forgery. It is
// needed: arrow-go stops reading each zstd frame before its own checksum,
// so most flipped bits in compressed data decode to wrong values without
// an error.
//
// # Write protocol
//
//  1. [Create] opens a blobs Writer for the key.
//  2. [Writer.Write] appends one IPC record batch message per record,
//     through a 64 KiB buffer, hashing every byte.
//  3. [Writer.Commit] writes the IPC footer and commits the blob: fsync the
//     temp file, rename it to the key's path (replacing any file there),
//     fsync the directory (and any parent directory not yet known
//     durable). It returns the File: key, size, rows, checksum.
//  4. Only after Commit returns a nil error may the caller name the File
//     in a checkpoint manifest, and that commit is the engine's, not this
//     package's: write → fsync → rename → checkpoint. A crash at any
//     earlier point leaves a temp file, or a file that no checkpoint
//     names, and a resumed run ignores or deletes it.
//
// [Writer.Abort] discards the file, whatever Commit got to: nothing stays
// visible under the key. Any failed Write or Commit leaves the Writer
// unusable, and the caller must Abort it; Abort after a successful Commit
// does nothing, so defer w.Abort() right after Create is safe. Errors of
// the bucket (syscall.ENOSPC on a full disk, context.Canceled) are wrapped
// for errors.Is and name the key.
//
// # Read protocol
//
// [Open] reads the whole file into memory (the engine bounds spill file
// size by its memory budget) and checks, in order: its size and checksum
// against the File; then the defences of footer.go; then that Arrow can
// parse the footer and schema. [Reader.Record] decodes one record batch on
// demand and validates its arrays, so that reading any of their values
// cannot panic. Every failure of these checks, and any Arrow decoding
// error, wraps [ErrCorrupt] and names the file; a missing file is not
// corrupt, and its error wraps [fs.ErrNotExist]. [Decode] does the same
// without a manifest, for bytes from anywhere.
//
// arrow-go trusts the sizes in a file. So the reader also guards against
// sizes that would take the process down instead of failing (footer.go and
// zstd.go list each defence, and testdata/fuzz/FuzzDecode holds a seed
// that arrow-go alone dies on, or allocates far too much for, for each):
// flatbuffers vector lengths must fit their buffers, schemas may nest at
// most 64 deep, and decoding the footer (schema, metadata, dictionaries),
// or one record, must fit [WithMaxRecordSize], else [ErrTooLarge]; so
// must the rows of a record, at most 8 per byte of it, since columns of
// types that store nothing could otherwise claim any number.
//
// # Memory
//
// The Reader uses the allocator given by [WithAllocator]; the Writer takes
// nothing from it. The Writer compresses the buffers of a record into one
// scratch body on the Go heap, which Writers share through a pool (a body
// over 16 MiB is left to the garbage collector), and writes it out before
// Write returns. Every Writer compresses with one zstd encoder at its
// fastest level, which holds an internal encoder per GOMAXPROCS for the
// life of the process, each with 256 KiB of tables and up to 2 MiB of
// history for its 1 MiB window; a Writer itself costs a few KiB, not the
// few MiB of the encoder that arrow-go's (v18.8) IPC writer makes for
// every file.
// The Reader keeps the file bytes on the Go heap until Close; Record
// copies one message out of them into allocator memory and decompresses
// each buffer into a new allocator buffer. A returned record therefore
// owns its memory: it stays valid after the Reader is closed, and the
// caller must Release it.
//
// The bound of [WithMaxRecordSize] applies to each decoding step, the
// footer or one record, twice over: once to the Go values arrow-go makes
// of the schema and custom metadata (counted by footer.go before arrow-go
// decodes them), once to the buffers from the allocator. Outside it, a
// step also takes its codec's state. For ZSTD that is the decoder's
// window, which each frame header declares: up to 8 MiB of it is free
// (about 9 MiB with the decoder's buffers), since 8 MiB is the window of
// arrow-go's default encoder, which wrote spill files before ipc.go did
// (declared by every buffer over 128 KiB; Create's files declare at most
// 1 MiB), and the engine's smallest --memory must read its own files; a
// larger window counts against the buffers' bound, and one that exceeds it, or a
// frame whose content does, gives [ErrTooLarge] before anything is
// decoded. For LZ4 it is two pooled blocks of at most 4 MiB each (8 MiB in
// the legacy format). On top of all this comes a small multiple of the
// file's size.
package spill
