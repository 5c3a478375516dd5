package blobs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"gocloud.dev/blob"
	"gocloud.dev/blob/fileblob"
	"gocloud.dev/gcerrors"

	"github.com/mrengine/mr/internal/redact"
)

// Modes of what a file bucket creates: only the user running mr reads
// shuffle files and dead letters (rows of the source tables).
const (
	dirMode  = 0o700
	fileMode = 0o600
)

// Bucket is a place to store blobs: a local directory, or an object store.
// It is safe for concurrent use.
type Bucket struct {
	b    *blob.Bucket
	dir  string     // absolute root of a file bucket; "" for other schemes
	name string     // for messages: dir, or the URL without credentials
	s3   *s3.Client // an S3 bucket's client (see s3BeforeWrite); else nil
	// s3Bucket and s3Prefix name an S3 bucket's keys as S3 sees them:
	// the URL's host, and its prefix parameter, which gocloud puts
	// before every key (see sweepUploads).
	s3Bucket, s3Prefix string

	// synced holds the directories under dir whose own entry in their
	// parent is known durable: their parent was fsynced after they existed.
	synced sync.Map
}

// OpenDir opens the directory dir as a durable bucket, creating it (mode
// 0700) and its missing parents if needed.
func OpenDir(dir string) (*Bucket, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("blobs: open %s: %w", dir, err)
	}
	// The directories that fileblob's CreateDir is about to make.
	var missing []string
	for d := abs; ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); !errors.Is(err, fs.ErrNotExist) || d == filepath.Dir(d) {
			break
		}
		missing = append(missing, d)
	}
	bb, err := fileblob.OpenBucket(abs, &fileblob.Options{
		CreateDir:   true,
		DirFileMode: dirMode,
		NoTempDir:   true,
		Metadata:    fileblob.MetadataDontWrite,
	})
	if err != nil {
		return nil, fmt.Errorf("blobs: open %s: %w", abs, cause(err))
	}
	// Make the new directories durable, so that no committed blob in them
	// can vanish with them.
	for _, d := range missing {
		if err := syncDirFunc(filepath.Dir(d)); err != nil {
			bb.Close()
			return nil, fmt.Errorf("blobs: open %s: sync %s: %w", abs, filepath.Dir(d), cause(err))
		}
	}
	return &Bucket{b: bb, dir: abs, name: abs}, nil
}

// Open opens the bucket at url. "file:///abs/dir" (or "file://localhost/…",
// or "file://./rel/dir" for a relative path) is OpenDir(dir) and takes no
// query parameters: mr sets the file options itself. Any other scheme goes
// to blob.OpenBucket, so the binary must link its driver (for example
// import _ "gocloud.dev/blob/s3blob").
func Open(ctx context.Context, rawURL string) (*Bucket, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // url.Error repeats the URL, password included
		}
		return nil, fmt.Errorf("blobs: open bucket: invalid URL: %w", err)
	}
	name := location(u)
	if u.Scheme == fileblob.Scheme {
		switch {
		case u.RawQuery != "":
			return nil, fmt.Errorf("blobs: open %s: file URLs take no query parameters (mr sets the file options itself)", name)
		case u.Host == ".":
			return OpenDir(strings.TrimPrefix(u.Path, "/"))
		case u.Host != "" && u.Host != "localhost":
			return nil, fmt.Errorf("blobs: open %s: a file URL names a local directory: file:///abs/dir", name)
		}
		return OpenDir(filepath.FromSlash(u.Path))
	}
	bb, err := blob.OpenBucket(ctx, rawURL)
	if err != nil {
		// gocloud quotes the whole URL; drivers take keys and tokens in the
		// query, so every query value is a secret.
		return nil, fmt.Errorf("blobs: open %s: %w", name, redact.Error(cause(err), redact.URLSecrets(u, nil)...))
	}
	return &Bucket{b: bb, name: name, s3: s3Client(bb), s3Bucket: u.Host, s3Prefix: u.Query().Get("prefix")}, nil
}

// location names the bucket at u without credentials: no user info, no
// query (where drivers take keys and tokens). It is a name, not u redacted:
// keys are appended to it in messages.
func location(u *url.URL) string {
	return u.Scheme + "://" + u.Host + u.Path
}

// String returns the bucket's directory, or its URL without credentials.
func (b *Bucket) String() string { return b.name }

// Close releases the bucket. Writers must be committed or aborted first.
func (b *Bucket) Close() error {
	if err := b.b.Close(); err != nil {
		return fmt.Errorf("blobs: close %s: %w", b.name, cause(err))
	}
	return nil
}

// NewWriter starts a blob that becomes visible under key only when Commit
// returns nil. The caller must call Commit or Abort; ctx bounds the whole
// write, and cancelling it aborts the write.
func (b *Bucket) NewWriter(ctx context.Context, key string) (*Writer, error) {
	ctx, cancel := context.WithCancel(ctx)
	w := &Writer{b: b, key: key, cancel: cancel}
	w.fault, _ = ctx.Value(faultKey{}).(FaultFunc)
	opts := &blob.WriterOptions{
		// A content type makes blob open the driver's writer now (so that
		// BeforeWrite runs before NewWriter returns) instead of buffering
		// 512 bytes to sniff one.
		ContentType: "application/octet-stream",
	}
	if b.dir != "" {
		opts.BeforeWrite = func(as func(any) bool) error {
			var f *os.File
			if !as(&f) {
				return errors.New("fileblob gave no *os.File to BeforeWrite")
			}
			w.f = f
			return f.Chmod(fileMode)
		}
	}
	if b.s3 != nil {
		opts.BeforeWrite = s3BeforeWrite(b.s3)
	}
	bw, err := b.b.NewWriter(ctx, key, opts)
	if err != nil { // fileblob removed the temp file
		cancel()
		return nil, b.writeError("create", key, 0, 0, err)
	}
	w.w = bw
	return w, nil
}

// Writer writes one blob. It is not safe for concurrent use.
//
// After a failed Write or Commit the Writer is unusable and the caller
// must Abort it. Abort after a successful Commit does nothing, so
// defer w.Abort() right after NewWriter is safe.
type Writer struct {
	b       *Bucket
	key     string
	w       *blob.Writer
	cancel  context.CancelFunc
	f       *os.File // a file bucket's temp file, from BeforeWrite
	fault   FaultFunc
	written int64 // bytes of the blob written so far
	closed  bool  // w.Close was called
	visible bool  // the blob is under key (Commit got past the rename)
	done    bool  // committed or aborted
	err     error // sticky failure of Write or Commit
}

// Write appends p to the blob.
func (w *Writer) Write(p []byte) (int, error) {
	if err := w.check(); err != nil {
		return 0, err
	}
	var n int
	err := w.injected("write", w.written+int64(len(p)))
	if err == nil {
		n, err = w.w.Write(p)
	}
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	if err != nil {
		w.err = w.b.writeError("write", w.key, w.written, int64(len(p)), err)
		w.written += int64(n)
		return n, w.err
	}
	w.written += int64(n)
	return n, nil
}

// injected returns the error that the fault of the Writer's context
// injects into op, if any.
func (w *Writer) injected(op string, size int64) error {
	if w.fault == nil {
		return nil
	}
	return w.fault(op, w.key, size)
}

// Commit makes the blob visible under key, replacing any blob there, and
// durable. For a file bucket: fsync the temp file, close it, rename it to
// the key's path, fsync that directory and any parent directory not yet
// known durable. Only after Commit returns nil may the key be named in a
// checkpoint.
func (w *Writer) Commit() error {
	if err := w.check(); err != nil {
		return err
	}
	if err := w.injected("commit", w.written); err != nil {
		return w.fail("commit", err)
	}
	if w.f != nil {
		if err := syncFileFunc(w.f); err != nil {
			return w.fail("commit", err)
		}
	}
	w.closed = true
	if err := w.w.Close(); err != nil {
		return w.fail("commit", err)
	}
	w.visible = true
	if w.f != nil {
		if err := w.b.syncDirs(filepath.Dir(w.f.Name())); err != nil {
			return w.fail("commit", err)
		}
	}
	w.done = true
	w.cancel()
	return nil
}

// Abort discards the blob: afterwards nothing is visible under key, nor
// left as a temp file. It is safe after a failed Write or Commit (if Commit
// failed after the rename, Abort deletes the key), does nothing after a
// successful Commit, and is idempotent.
func (w *Writer) Abort() error {
	if w.done {
		return nil
	}
	w.done = true
	w.cancel() // makes the driver's Close discard the blob
	var err error
	if !w.closed {
		w.closed = true
		w.w.Close() // fails with context.Canceled, as it should
	}
	if w.f != nil {
		// fileblob leaves the temp file if closing it failed.
		if rerr := os.Remove(w.f.Name()); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			err = rerr
		}
	}
	if w.visible {
		if derr := w.b.b.Delete(context.Background(), w.key); derr != nil && gcerrors.Code(derr) != gcerrors.NotFound {
			err = derr
		}
	}
	if w.b.s3 != nil && w.written >= s3MultipartThreshold && !w.visible {
		if serr := w.b.sweepUploads(w.key); serr != nil {
			err = serr
		}
	}
	if err != nil {
		return w.b.errorf("abort", w.key, err)
	}
	return nil
}

func (w *Writer) check() error {
	switch {
	case w.done:
		return fmt.Errorf("blobs: write %s: writer is committed or aborted", w.b.where(w.key))
	case w.err != nil:
		return w.err
	}
	return nil
}

func (w *Writer) fail(op string, err error) error {
	w.err = w.b.writeError(op, w.key, w.written, 0, err)
	return w.err
}

// syncDirs fsyncs dir, a directory in the bucket where a rename just
// happened, and the parent of every directory between dir and the root
// that is not known durable yet. fileblob creates a key's directories on
// demand; until their parents are fsynced, a crash can lose them, and the
// committed blobs in them with them.
func (b *Bucket) syncDirs(dir string) error {
	if err := syncDirFunc(dir); err != nil {
		return err
	}
	for d := dir; len(d) > len(b.dir); d = filepath.Dir(d) {
		// No early exit: a directory may be marked while its parent, made
		// by another Writer, is not marked yet.
		if _, ok := b.synced.Load(d); ok {
			continue
		}
		if err := syncDirFunc(filepath.Dir(d)); err != nil {
			return err
		}
		b.synced.Store(d, true)
	}
	return nil
}

// FaultFunc injects a fault into a Writer: called before each Write and
// Commit with the operation ("write" or "commit"), the key, and the size
// the blob would have after a Write (or has, at Commit), it returns the
// error the operation then fails with as if the storage had returned it,
// or nil to let it go ahead. A Write it fails writes nothing.
type FaultFunc func(op, key string, size int64) error

type faultKey struct{}

// WithFault returns a context whose Writers (those NewWriter creates with
// it, or a context derived from it) call fault: a test seam, so that tests
// far from this package can fill the disk (syscall.ENOSPC) at the write
// they choose, with everything else about the file system real. fault must
// be safe for concurrent use, since a run writes from many goroutines.
// Without it a Writer costs one context lookup at NewWriter.
func WithFault(ctx context.Context, fault FaultFunc) context.Context {
	return context.WithValue(ctx, faultKey{}, fault)
}

// syncFileFunc makes a file's contents durable, and syncDirFunc a
// directory's entries. Nothing else in the package fsyncs, so that tests
// can replace them to see every sync and when it happens (export_test.go):
// no other test shows that a sync is missing.
var (
	syncFileFunc = (*os.File).Sync
	syncDirFunc  = syncDir
)

// syncDir makes the entries of dir durable.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil // Windows cannot fsync a directory; NTFS journals its entries
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// ReadAll returns the blob under key. A missing key gives an error wrapping
// fs.ErrNotExist; a missing bucket, ErrNoBucket.
func (b *Bucket) ReadAll(ctx context.Context, key string) ([]byte, error) {
	data, err := b.b.ReadAll(ctx, key)
	if err != nil {
		return nil, b.errorf("read", key, b.bucketError(err, b.missingFunc(ctx)))
	}
	return data, nil
}

// Delete removes the blob under key. A missing key is not an error; a
// missing bucket is (ErrNoBucket).
func (b *Bucket) Delete(ctx context.Context, key string) error {
	err := b.bucketError(b.b.Delete(ctx, key), b.missingFunc(ctx))
	if err != nil && gcerrors.Code(err) != gcerrors.NotFound {
		return b.errorf("delete", key, err)
	}
	return nil
}

// List returns the keys that start with prefix, sorted, temp files of
// unfinished or crashed writers included (see the package documentation).
// It is for garbage collection only: readers find their inputs through
// committed manifests, never by listing.
func (b *Bucket) List(ctx context.Context, prefix string) ([]string, error) {
	var keys []string
	it := b.b.List(&blob.ListOptions{Prefix: prefix})
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, b.errorf("list", prefix, b.bucketError(err, always))
		}
		if !obj.IsDir {
			keys = append(keys, obj.Key)
		}
	}
	// fileblob lists in directory walk order: "a/b" before "a-b".
	slices.Sort(keys)
	return keys, nil
}

// where names key for messages: its path in a file bucket.
func (b *Bucket) where(key string) string {
	if b.dir != "" {
		return filepath.Join(b.dir, filepath.FromSlash(key))
	}
	return strings.TrimSuffix(b.name, "/") + "/" + key
}

// WriteError reports a blob that could not be created, written or
// committed, with how much of it was written: enough for a caller to tell
// a user which disk filled up and by how much it fell short. It wraps the
// cause like every error of the package (syscall.ENOSPC for a full disk).
type WriteError struct {
	Op     string // "create", "write" or "commit"
	Bucket string // the bucket: its directory, or its URL without credentials
	Path   string // the blob: its file in a file bucket, else the bucket's URL and key
	// Written is the bytes of the blob written before the failure, and
	// Refused the bytes of the Write that failed (0 for create and commit,
	// which fail with all of Written still to be made durable).
	Written, Refused int64
	Err              error
}

func (e *WriteError) Error() string {
	switch e.Op {
	case "write":
		return fmt.Sprintf("blobs: write %s (%d bytes written, %d more refused): %v", e.Path, e.Written, e.Refused, e.Err)
	case "commit":
		return fmt.Sprintf("blobs: commit %s (%d bytes): %v", e.Path, e.Written, e.Err)
	}
	return fmt.Sprintf("blobs: %s %s: %v", e.Op, e.Path, e.Err)
}

func (e *WriteError) Unwrap() error { return e.Err }

// writeError is a *WriteError of op on key, like errorf's.
func (b *Bucket) writeError(op, key string, written, refused int64, err error) error {
	err = b.bucketError(err, always)
	return &WriteError{Op: op, Bucket: b.name, Path: b.where(key), Written: written, Refused: refused, Err: opCause(err)}
}

// errorf reports that op failed on key. The error wraps the cause and, if
// the driver says the key is missing, fs.ErrNotExist.
func (b *Bucket) errorf(op, key string, err error) error {
	return fmt.Errorf("blobs: %s %s: %w", op, b.where(key), opCause(err))
}

// ErrNoBucket is the cause of an operation on an object store's bucket
// that does not exist: a URL or a setup to fix. It is not fs.ErrNotExist,
// which says that a blob is missing in a bucket that is there: on S3 both
// are NotFound to gocloud, and taking one for the other would make a
// reader treat its committed inputs as lost, and a Delete succeed.
var ErrNoBucket = errors.New("bucket does not exist")

// noBucketError is ErrNoBucket with the driver's error below it.
type noBucketError struct{ err error }

func (e *noBucketError) Error() string        { return ErrNoBucket.Error() }
func (e *noBucketError) Is(target error) bool { return target == ErrNoBucket }
func (e *noBucketError) Unwrap() error        { return e.err }

// bucketError returns err, or, if err is an object store's NotFound and
// missing reports that the bucket is what is missing, a *noBucketError
// with err's cause.
func (b *Bucket) bucketError(err error, missing func() bool) error {
	if err != nil && b.dir == "" && gcerrors.Code(err) == gcerrors.NotFound && missing() {
		return &noBucketError{cause(err)}
	}
	return err
}

// always is the missing of bucketError for the operations whose NotFound
// can only be the bucket's: a write creates its key, and a List of no
// keys is empty.
func always() bool { return true }

// missingFunc is the missing of bucketError for the operations on one key,
// whose NotFound is usually the key's: it asks the store whether the
// bucket is there. It costs a request, on NotFound only.
func (b *Bucket) missingFunc(ctx context.Context) func() bool {
	return func() bool {
		ok, err := b.b.IsAccessible(ctx)
		return err == nil && !ok
	}
}

// opCause is the cause of a failed operation: see cause; a key the driver
// says is missing wraps fs.ErrNotExist.
func opCause(err error) error {
	c := cause(err)
	if gcerrors.Code(err) == gcerrors.NotFound && !errors.Is(c, fs.ErrNotExist) {
		c = fs.ErrNotExist
	}
	return c
}

// cause returns err, an error of package blob or os, without gocloud's
// wrapping ("blob (key …) (code=…)") and package os's *PathError or
// *LinkError, which repeat the key or name a temp file the caller never
// saw. errors.Is still finds what is below.
func cause(err error) error {
	// gocloud's *gcerr.Error unwraps to the driver's error and a sentinel
	// for its code.
	if u, ok := err.(interface{ Unwrap() []error }); ok {
		if errs := u.Unwrap(); len(errs) > 0 && errs[0] != nil {
			err = errs[0]
		}
	}
	var pathErr *fs.PathError
	var linkErr *os.LinkError
	switch {
	case errors.As(err, &pathErr):
		return pathErr.Err
	case errors.As(err, &linkErr):
		return linkErr.Err
	}
	return err
}
