// Package blobs is durable object storage for mr's shuffle files and dead
// letters: a thin layer over gocloud.dev/blob that adds what mr's commit
// protocol needs and the portable API leaves to each driver.
//
// Schematically:
//
//	OpenDir(dir) or Open(ctx, "file:///dir" | "s3://…") → *Bucket
//	b.NewWriter(ctx, key) → Write(p)* → Commit()   // or Abort()
//	b.ReadAll(ctx, key), b.Delete(ctx, key), b.List(ctx, prefix)
//
// Keys are slash-separated, e.g. "run-1/shuffle/b0003/p0001-000002-a1b2c3.arrow".
// The engine makes every key unique to the attempt that writes it and finds
// inputs only through committed manifests, so List serves garbage
// collection alone.
//
// # Why fileblob needs a wrapper
//
// gocloud.dev/blob/fileblob (v0.47.0) writes a blob to a temporary file and
// renames it into place on Close, which makes a blob appear whole or not at
// all, but not durably, and not the way mr wants it on disk:
//
//   - it never fsyncs the file or its directory, so a blob whose Close
//     returned nil can be empty, or gone, after a power failure;
//   - by default it puts temp files in os.TempDir, and the rename fails
//     when that is another mount (EXDEV);
//   - it creates files 0666 and directories 0777 (less the umask);
//   - by default it writes a ".attrs" sidecar file next to every blob.
//
// A file bucket therefore opens fileblob with NoTempDir (the temp file sits
// next to its final path, so the rename stays in one directory), Metadata
// MetadataDontWrite (no sidecars), DirFileMode 0700 and CreateDir. Its
// WriterOptions.BeforeWrite hook receives the temp *os.File: the Writer
// makes it 0600 and keeps it, so that [Writer.Commit] can fsync it before
// fileblob closes and renames it, and then fsync the directory, plus each
// parent directory not yet known durable, so the new name survives a crash
// too.
//
// # Temp files
//
// fileblob names a file bucket's temp file after the final path:
// "<path>.<hex nanoseconds>.tmp". A crash (kill -9, power loss) before
// Commit returns leaves it behind. It is never visible under the key, but
// List returns it, as the key "<key>.<hex>.tmp", so that garbage collection
// can Delete it like any other key that no committed manifest names.
// Deleting keys of a run while a Writer of that run is open breaks that
// Writer's Commit; the engine collects only runs it is not writing.
//
// # Errors
//
// Every error names the key (for a file bucket, its full path) and keeps
// its cause for errors.Is: syscall.ENOSPC for a full disk, fs.ErrNotExist
// for a missing key (whatever the driver), and ErrNoBucket, never
// fs.ErrNotExist, for an object store's bucket that is not there, which
// gocloud reports like a missing key. It drops the layers of package os
// and gocloud that name a temp file or repeat the key. A bucket is named by
// its URL without user info or query; where a driver's error quotes the
// whole URL, its password and every query value (drivers take keys and
// tokens there) are masked, by internal/redact as everywhere in mr.
//
// A failed create, Write or Commit is a *WriteError, which also names the
// bucket and says how many bytes of the blob were written and how many a
// failed Write still had to write, so that the engine can turn a full disk
// into a message naming the directory that filled up and what to do.
// WithFault injects such a failure, for tests that fill the disk at a
// chosen write of a whole run without a tiny file system.
//
// Other schemes (s3://, gs://, azblob://) go through blob.OpenBucket with
// the drivers the importing binary links in. Their Commit is the driver's
// Close: the object becomes visible whole, and is durable when the service
// acknowledges it. Nothing is listed before then. On S3 a blob past 16 MiB
// is a multipart upload, whose parts Abort, or a cancelled context, must
// discard too: s3blob alone leaves them, billed, for S3 to keep (see
// s3BeforeWrite).
package blobs
