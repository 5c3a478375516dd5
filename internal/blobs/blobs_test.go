package blobs_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	_ "gocloud.dev/blob/memblob"

	"github.com/mrengine/mr/internal/blobs"
	"github.com/mrengine/mr/internal/redact"
)

const testKey = "run-1/shuffle/b0003/p0001-000002-a1b2c3.arrow"

type testBundle struct {
	bucket *blobs.Bucket
	dir    string // root of a file bucket
}

// setup opens a file bucket at a directory that does not exist yet.
func setup(t *testing.T) *testBundle {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "work")
	b, err := blobs.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return &testBundle{bucket: b, dir: dir}
}

func setupMem(t *testing.T) *blobs.Bucket {
	t.Helper()
	b, err := blobs.Open(context.Background(), "mem://")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// files lists the regular files under dir, relative and slash-separated.
func files(t *testing.T, dir string) []string {
	t.Helper()
	var names []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, path)
			names = append(names, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func write(t *testing.T, b *blobs.Bucket, key string, data []byte) *blobs.Writer {
	t.Helper()
	w, err := b.NewWriter(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Abort() })
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	return w
}

// isTempOf reports whether key is a fileblob temp file of final.
func isTempOf(key, final string) bool {
	return strings.HasPrefix(key, final+".") && strings.HasSuffix(key, ".tmp")
}

func TestWriter_Commit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	data := bytes.Repeat([]byte("mr"), 5000)
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T) (*blobs.Bucket, string)
	}{
		{"File", func(t *testing.T) (*blobs.Bucket, string) { tb := setup(t); return tb.bucket, tb.dir }},
		{"Mem", func(t *testing.T) (*blobs.Bucket, string) { return setupMem(t), "" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b, dir := tc.setup(t)
			w := write(t, b, testKey, data)

			if _, err := b.ReadAll(ctx, testKey); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("before Commit, ReadAll = %v, want fs.ErrNotExist", err)
			}
			keys, err := b.List(ctx, "run-1/")
			if err != nil {
				t.Fatal(err)
			}
			// A file bucket's temp file is listed, in the key's own
			// directory (not in os.TempDir); an object store shows nothing.
			if dir != "" && (len(keys) != 1 || !isTempOf(keys[0], testKey)) {
				t.Errorf("before Commit, List = %q, want one temp file of %s", keys, testKey)
			}
			if dir == "" && len(keys) != 0 {
				t.Errorf("before Commit, List = %q, want none", keys)
			}

			checkCommit(t, b, w, data)
		})
	}
}

// A file bucket creates directories 0700 and files 0600, and no .attrs
// sidecar files.
func TestOpenDir_Modes(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	if err := write(t, tb.bucket, testKey, []byte("x")).Commit(); err != nil {
		t.Fatal(err)
	}
	if names := files(t, tb.dir); !slices.Equal(names, []string{testKey}) {
		t.Errorf("directory holds %q, want only %s", names, testKey)
	}
	path := filepath.Join(tb.dir, filepath.FromSlash(testKey))
	check := func(path string, want fs.FileMode) {
		t.Helper()
		info, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := info.Mode().Perm(); got != want {
			t.Errorf("%s: mode %v, want %v", path, got, want)
		}
	}
	check(path, 0o600)
	for d := filepath.Dir(path); len(d) >= len(tb.dir); d = filepath.Dir(d) {
		check(d, 0o700)
	}
}

func TestWriter_Abort(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T) *blobs.Bucket
	}{
		{"File", func(t *testing.T) *blobs.Bucket { return setup(t).bucket }},
		{"Mem", setupMem},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := tc.setup(t)
			w := write(t, b, testKey, []byte("uncommitted"))
			for range 2 {
				if err := w.Abort(); err != nil {
					t.Fatalf("Abort() = %v", err)
				}
			}
			if keys, err := b.List(ctx, ""); err != nil || len(keys) != 0 {
				t.Errorf("after Abort, List = %q, %v; want none", keys, err)
			}
			if _, err := b.ReadAll(ctx, testKey); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("after Abort, ReadAll = %v, want fs.ErrNotExist", err)
			}
			if _, err := w.Write([]byte("x")); err == nil {
				t.Error("Write after Abort succeeded")
			}
			if err := w.Commit(); err == nil {
				t.Error("Commit after Abort succeeded")
			}
		})
	}
}

// Cancelling the context of NewWriter aborts the write.
func TestWriter_Commit_Canceled(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx, cancel := context.WithCancel(context.Background())
	w, err := tb.bucket.NewWriter(ctx, testKey)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	if _, err := w.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := w.Commit(); !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), testKey) {
		t.Errorf("Commit after cancel = %v, want context.Canceled naming %s", err, testKey)
	}
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	if names := files(t, tb.dir); len(names) != 0 {
		t.Errorf("after Abort, directory holds %q", names)
	}
}

// TestWriter_Kill kills -9 a process in the middle of a write: the key is
// not visible when the bucket is opened again, and List shows the temp file
// so that garbage collection can delete it.
func TestWriter_Kill(t *testing.T) {
	if dir := os.Getenv("BLOBS_TEST_KILL_DIR"); dir != "" {
		b, err := blobs.OpenDir(dir)
		if err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		w, err := b.NewWriter(context.Background(), testKey)
		if err == nil {
			_, err = w.Write(bytes.Repeat([]byte("x"), 1<<20))
		}
		if err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		fmt.Println("written")
		select {} // until killed
	}
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "work")
	cmd := exec.Command(os.Args[0], "-test.run=^TestWriter_Kill$")
	cmd.Env = append(os.Environ(), "BLOBS_TEST_KILL_DIR="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	cmd.Process.Kill()
	cmd.Wait()
	if line != "written\n" {
		t.Fatalf("child said %q, want written", line)
	}

	b, err := blobs.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	if _, err := b.ReadAll(ctx, testKey); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after kill -9, ReadAll = %v, want fs.ErrNotExist", err)
	}
	keys, err := b.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || !isTempOf(keys[0], testKey) {
		t.Fatalf("after kill -9, List = %q, want the temp file of %s", keys, testKey)
	}
	if err := b.Delete(ctx, keys[0]); err != nil {
		t.Fatal(err)
	}
	if names := files(t, dir); len(names) != 0 {
		t.Errorf("after Delete, directory holds %q", names)
	}
}

// TestWriter_ENOSPC fills a tiny tmpfs: the error wraps syscall.ENOSPC and
// names the key, and Abort leaves nothing. It needs root (mount).
func TestWriter_ENOSPC(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs (needs root): %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	b, err := blobs.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	w, err := b.NewWriter(context.Background(), testKey)
	if err != nil {
		t.Fatal(err)
	}
	chunk := bytes.Repeat([]byte("x"), 16<<10)
	for range 8 { // twice the file system
		if _, err = w.Write(chunk); err != nil {
			break
		}
	}
	if err == nil {
		err = w.Commit()
	}
	var werr *blobs.WriteError
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), testKey) || !errors.As(err, &werr) || werr.Bucket != dir || werr.Written == 0 {
		t.Errorf("writing 128 KiB to a 64 KiB file system: %v, want a *WriteError wrapping ENOSPC, naming %s and the bytes written", err, testKey)
	}
	if err := w.Commit(); err == nil {
		t.Error("Commit after a failed Write succeeded")
	}
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	if names := files(t, dir); len(names) != 0 {
		t.Errorf("after Abort, the file system holds %q", names)
	}
}

// TestWriter_Fault: a fault injected through the context fails the Write
// or Commit it names like the storage would, the error says how much of
// the blob was written, and Abort leaves nothing.
func TestWriter_Fault(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		op                   string
		want                 string
		wantWritten, refused int64
	}{
		{"write", "(8192 bytes written, 4096 more refused): no space left on device", 8192, 4096},
		{"commit", "(12288 bytes): no space left on device", 12288, 0},
	} {
		t.Run(tc.op, func(t *testing.T) {
			t.Parallel()
			tb := setup(t)
			ctx := blobs.WithFault(context.Background(), func(op, key string, size int64) error {
				if op == tc.op && key == testKey && size > 8192 {
					return syscall.ENOSPC
				}
				return nil
			})
			w, err := tb.bucket.NewWriter(ctx, testKey)
			if err != nil {
				t.Fatal(err)
			}
			chunk := bytes.Repeat([]byte("x"), 4096)
			for range 3 {
				if _, err = w.Write(chunk); err != nil {
					break
				}
			}
			if err == nil {
				err = w.Commit()
			}
			var werr *blobs.WriteError
			if !errors.As(err, &werr) || !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("%s with an injected ENOSPC = %v, want a *WriteError wrapping it", tc.op, err)
			}
			if werr.Op != tc.op || werr.Bucket != tb.dir || werr.Written != tc.wantWritten || werr.Refused != tc.refused ||
				err.Error() != "blobs: "+tc.op+" "+filepath.Join(tb.dir, testKey)+" "+tc.want {
				t.Errorf("error = %q %+v, want op %s, bucket %s, %d written, %d refused", err, werr, tc.op, tb.dir, tc.wantWritten, tc.refused)
			}
			if err := w.Abort(); err != nil {
				t.Fatal(err)
			}
			if names := files(t, tb.dir); len(names) != 0 {
				t.Errorf("after Abort, the bucket holds %q", names)
			}
		})
	}
}

// A sync is what the file system did when the bucket fsynced path.
type fsync struct {
	path  string // relative to the bucket's parent, slash-separated
	dir   bool
	final string // for a file: what the key's path held (or "missing")
	size  int64  // for a file: its size
}

// recordSyncs records every fsync under root, and for a file the state of
// final (the key's path) at that moment.
func recordSyncs(t *testing.T, root string, final *string) *[]fsync {
	t.Helper()
	var syncs []fsync
	blobs.OnSync(t, func(path string, dir bool) {
		rel, err := filepath.Rel(filepath.Dir(root), path)
		if err != nil || strings.HasPrefix(rel, "..") {
			return // another test's
		}
		s := fsync{path: filepath.ToSlash(rel), dir: dir}
		if !dir {
			s.final = "missing"
			if data, err := os.ReadFile(*final); err == nil {
				s.final = string(data)
			}
			if fi, err := os.Stat(path); err == nil {
				s.size = fi.Size()
			}
		}
		syncs = append(syncs, s)
	})
	return &syncs
}

// A Commit fsyncs the temp file, whole, before the rename makes it the
// key's; then, after the rename, the key's directory and the parent of
// each directory not yet known durable, deepest first. Not parallel: it
// replaces the package's sync functions.
func TestWriter_Commit_Syncs(t *testing.T) {
	tb := setup(t)
	var final string
	syncs := recordSyncs(t, tb.dir, &final)
	for _, tc := range []struct {
		key, old string // old: what the key's path held before
		dirs     []string
	}{
		// The first Commit: every directory of the key is new.
		{"run-1/shuffle/b0003/p1.arrow", "missing", []string{"work/run-1/shuffle/b0003", "work/run-1/shuffle", "work/run-1", "work"}},
		// The same directory: its parents are known durable.
		{"run-1/shuffle/b0003/p2.arrow", "missing", []string{"work/run-1/shuffle/b0003"}},
		// A new sibling: its parent, but not theirs.
		{"run-1/shuffle/b0004/p1.arrow", "missing", []string{"work/run-1/shuffle/b0004", "work/run-1/shuffle"}},
		// A replaced blob: the old one stays until the rename.
		{"run-1/shuffle/b0003/p1.arrow", "run-1/shuffle/b0003/p1.arrow 0", []string{"work/run-1/shuffle/b0003"}},
	} {
		*syncs = nil
		final = filepath.Join(tb.dir, filepath.FromSlash(tc.key))
		data := fmt.Sprintf("%s %d", tc.key, len(files(t, tb.dir)))
		if err := write(t, tb.bucket, tc.key, []byte(data)).Commit(); err != nil {
			t.Fatal(err)
		}
		want := []fsync{{path: "work/" + tc.key, final: tc.old, size: int64(len(data))}}
		for _, d := range tc.dirs {
			want = append(want, fsync{path: d, dir: true})
		}
		got := *syncs
		// The temp file's name is fileblob's: "<path>.<hex>.tmp".
		if len(got) > 0 && !got[0].dir && isTempOf(got[0].path, want[0].path) {
			got[0].path = want[0].path
		}
		if !slices.Equal(got, want) {
			t.Errorf("Commit(%s) synced\n%+v\nwant\n%+v", tc.key, *syncs, want)
		}
	}
}

// OpenDir fsyncs the parent of each directory it creates.
func TestOpenDir_Syncs(t *testing.T) {
	root := filepath.Join(t.TempDir(), "work")
	syncs := recordSyncs(t, root, nil)
	b, err := blobs.OpenDir(filepath.Join(root, "a", "b"))
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	want := []fsync{{path: "work/a", dir: true}, {path: "work", dir: true}, {path: ".", dir: true}}
	if !slices.Equal(*syncs, want) {
		t.Errorf("OpenDir synced %+v, want %+v", *syncs, want)
	}
}

// Writers commit concurrently into directories they create together.
func TestWriter_Commit_Concurrent(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	var want []string
	for i := range 8 {
		key := fmt.Sprintf("run-1/shuffle/b%04d/p%04d.arrow", i%2, i)
		want = append(want, key)
		wg.Go(func() {
			w, err := tb.bucket.NewWriter(ctx, key)
			if err != nil {
				t.Error(err)
				return
			}
			defer w.Abort()
			if _, err := w.Write([]byte(key)); err != nil {
				t.Error(err)
				return
			}
			if err := w.Commit(); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	slices.Sort(want)
	if keys, err := tb.bucket.List(ctx, "run-1/"); err != nil || !slices.Equal(keys, want) {
		t.Errorf("List = %q, %v; want %q", keys, err, want)
	}
}

func TestBucket_ReadAll_NotExist(t *testing.T) {
	t.Parallel()
	for name, b := range map[string]*blobs.Bucket{"File": setup(t).bucket, "Mem": setupMem(t)} {
		_, err := b.ReadAll(context.Background(), testKey)
		if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), testKey) {
			t.Errorf("%s: ReadAll(missing) = %v, want fs.ErrNotExist naming %s", name, err, testKey)
		}
	}
}

func TestBucket_Delete(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for name, b := range map[string]*blobs.Bucket{"File": setup(t).bucket, "Mem": setupMem(t)} {
		if err := b.Delete(ctx, testKey); err != nil {
			t.Errorf("%s: Delete(missing) = %v, want nil", name, err)
		}
		if err := write(t, b, testKey, []byte("x")).Commit(); err != nil {
			t.Fatal(err)
		}
		if err := b.Delete(ctx, testKey); err != nil {
			t.Errorf("%s: Delete = %v", name, err)
		}
		if _, err := b.ReadAll(ctx, testKey); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: after Delete, ReadAll = %v, want fs.ErrNotExist", name, err)
		}
	}
}

// List sorts keys as strings, though fileblob walks "a/b" before "a-b".
func TestBucket_List(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for name, b := range map[string]*blobs.Bucket{"File": setup(t).bucket, "Mem": setupMem(t)} {
		for _, key := range []string{"r/a/b", "r/a-b", "r/a/a", "s/x"} {
			if err := write(t, b, key, []byte(key)).Commit(); err != nil {
				t.Fatal(err)
			}
		}
		if keys, err := b.List(ctx, "r/"); err != nil || !slices.Equal(keys, []string{"r/a-b", "r/a/a", "r/a/b"}) {
			t.Errorf("%s: List(r/) = %q, %v; want [r/a-b r/a/a r/a/b]", name, keys, err)
		}
	}
}

func TestOpen(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	b, err := blobs.Open(ctx, "file://"+filepath.ToSlash(dir))
	if err != nil {
		t.Fatal(err)
	}
	if err := write(t, b, testKey, []byte("x")).Commit(); err != nil {
		t.Fatal(err)
	}
	b.Close()
	if b.String() != dir {
		t.Errorf("String() = %q, want %q", b.String(), dir)
	}
	if names := files(t, dir); !slices.Equal(names, []string{testKey}) {
		t.Errorf("directory holds %q, want %s", names, testKey)
	}

	for _, tc := range []struct {
		url, want string
	}{
		{"file://" + dir + "?no_tmp_dir=1", "take no query parameters"},
		{"file://host/dir", "names a local directory"},
		// s3blob (linked for the S3 tests) rejects these parameters, and
		// gocloud, with no driver for gs linked, the scheme: either error
		// names the bucket and quotes the URL, the secrets masked as
		// everywhere in mr.
		{"s3://AKIA:s3cr3t@bucket/prefix?access_key_id=AKIA&secret=s3cr3t", "s3://bucket/prefix"},
		{"s3://AKIA:s3cr3t@bucket/prefix?access_key_id=AKIA&secret=s3cr3t", ":" + redact.Mask + "@bucket/prefix?access_key_id=" + redact.Mask + "&secret=" + redact.Mask},
		{"gs://AKIA:s3cr3t@bucket/prefix?secret=s3cr3t", "gs://bucket/prefix"},
		{"gs://AKIA:s3cr3t@bucket/prefix?secret=s3cr3t", ":" + redact.Mask + "@bucket/prefix?secret=" + redact.Mask},
	} {
		_, err := blobs.Open(ctx, tc.url)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("Open(%q) = %v, want an error saying %q without the secret", tc.url, err, tc.want)
		}
	}
	if b := setupMem(t); b.String() != "mem://" {
		t.Errorf("String() = %q, want mem://", b.String())
	}
}

// checkCommit commits w, which wrote data under testKey, and checks that
// the blob is then visible, the only one in b, and that neither Abort nor
// another Write or Commit changes it.
func checkCommit(t *testing.T, b *blobs.Bucket, w *blobs.Writer, data []byte) {
	t.Helper()
	ctx := context.Background()
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	got, err := b.ReadAll(ctx, testKey)
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("ReadAll = %d bytes, %v; want the %d bytes written", len(got), err, len(data))
	}
	if keys, err := b.List(ctx, ""); err != nil || !slices.Equal(keys, []string{testKey}) {
		t.Errorf("List = %q, %v; want only %s", keys, err, testKey)
	}
	if err := w.Abort(); err != nil {
		t.Errorf("Abort after Commit = %v", err)
	}
	if _, err := b.ReadAll(ctx, testKey); err != nil {
		t.Errorf("Abort after Commit removed the blob: %v", err)
	}
	if _, err := w.Write(data); err == nil {
		t.Error("Write after Commit succeeded")
	}
	if err := w.Commit(); err == nil {
		t.Error("second Commit succeeded")
	}
}
