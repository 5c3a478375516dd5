package blobs_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	_ "gocloud.dev/blob/s3blob"

	"github.com/mrengine/mr/internal/blobs"
	"github.com/mrengine/mr/internal/s3test"
)

// The tests of this file run what the file tests check against a real S3
// server (versitygw, through internal/s3test): what mr's commit protocol
// needs of shuffle storage must hold on S3 too.

// s3Bundle is an S3 bucket opened through blobs.Open, and its URL.
type s3Bundle struct {
	bucket *blobs.Bucket
	url    string
	name   string // "s3://<bucket>", what messages call it
}

func setupS3(t *testing.T) *s3Bundle {
	t.Helper()
	u := s3test.URL(t)
	b, err := blobs.Open(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	return &s3Bundle{bucket: b, url: u, name: "s3://" + pu.Host}
}

// noUploads fails t if the bucket holds an unfinished multipart upload.
func (sb *s3Bundle) noUploads(t *testing.T, when string) {
	t.Helper()
	if ups := s3test.Uploads(t, sb.url); len(ups) != 0 {
		t.Errorf("%s, unfinished multipart uploads of %q remain", when, ups)
	}
}

// noSecrets fails t if msg holds the gateway's keys.
func noSecrets(t *testing.T, msg string) {
	t.Helper()
	if strings.Contains(msg, s3test.SecretKey) || strings.Contains(msg, s3test.AccessKey) {
		t.Errorf("message %q holds the S3 keys", msg)
	}
}

// Sizes of blob: one PUT, and one past the SDK's 16 MiB threshold, which
// is a multipart upload.
var s3Sizes = []struct {
	name      string
	size      int
	multipart bool
}{
	{"Small", 10 << 10, false},
	{"Multipart", 17 << 20, true},
}

// waitUpload waits until the multipart upload of a blob of size has begun,
// so that aborting it has parts to discard.
func (sb *s3Bundle) waitUpload(t *testing.T, multipart bool) {
	t.Helper()
	if !multipart {
		return
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(s3test.Uploads(t, sb.url)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no multipart upload began within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestWriter_Commit_S3(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tc := range s3Sizes {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sb := setupS3(t)
			b := sb.bucket
			data := bytes.Repeat([]byte("mr"), tc.size/2)
			w := write(t, b, testKey, data)

			if _, err := b.ReadAll(ctx, testKey); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("before Commit, ReadAll = %v, want fs.ErrNotExist", err)
			}
			if keys, err := b.List(ctx, "run-1/"); err != nil || len(keys) != 0 {
				t.Errorf("before Commit, List = %q, %v; want none", keys, err)
			}
			checkCommit(t, b, w, data)
			sb.noUploads(t, "after Commit")
		})
	}
}

// A Commit replaces the blob under its key whole.
func TestWriter_Commit_S3_Replace(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupS3(t).bucket
	for _, data := range []string{"first, and longer", "second"} {
		if err := write(t, b, testKey, []byte(data)).Commit(); err != nil {
			t.Fatal(err)
		}
		if got, err := b.ReadAll(ctx, testKey); err != nil || string(got) != data {
			t.Errorf("ReadAll = %q, %v; want %q", got, err, data)
		}
	}
}

func TestWriter_Abort_S3(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tc := range s3Sizes {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sb := setupS3(t)
			b := sb.bucket
			w := write(t, b, testKey, bytes.Repeat([]byte("x"), tc.size))
			sb.waitUpload(t, tc.multipart)
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
			sb.noUploads(t, "after Abort")
		})
	}
}

// Cancelling the context of NewWriter aborts the write: Commit fails
// naming the blob, and nothing is left, not even the parts of an upload.
func TestWriter_Commit_S3_Canceled(t *testing.T) {
	t.Parallel()
	for _, tc := range s3Sizes {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sb := setupS3(t)
			ctx, cancel := context.WithCancel(context.Background())
			w, err := sb.bucket.NewWriter(ctx, testKey)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Abort()
			if _, err := w.Write(bytes.Repeat([]byte("x"), tc.size)); err != nil {
				t.Fatal(err)
			}
			sb.waitUpload(t, tc.multipart)
			cancel()
			err = w.Commit()
			if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), sb.name+"/"+testKey) {
				t.Errorf("Commit after cancel = %v, want context.Canceled naming %s/%s", err, sb.name, testKey)
			}
			if err != nil {
				noSecrets(t, err.Error())
			}
			if err := w.Abort(); err != nil {
				t.Fatal(err)
			}
			if keys, err := sb.bucket.List(context.Background(), ""); err != nil || len(keys) != 0 {
				t.Errorf("after Abort, List = %q, %v; want none", keys, err)
			}
			sb.noUploads(t, "after a cancelled write")
		})
	}
}

func TestBucket_ReadAll_S3_NotExist(t *testing.T) {
	t.Parallel()
	sb := setupS3(t)
	_, err := sb.bucket.ReadAll(context.Background(), testKey)
	if want := "blobs: read " + sb.name + "/" + testKey + ": " + fs.ErrNotExist.Error(); !errors.Is(err, fs.ErrNotExist) || err.Error() != want {
		t.Errorf("ReadAll(missing) = %v, want fs.ErrNotExist: %q", err, want)
	}
}

func TestBucket_Delete_S3(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupS3(t).bucket
	if err := b.Delete(ctx, testKey); err != nil {
		t.Errorf("Delete(missing) = %v, want nil", err)
	}
	if err := write(t, b, testKey, []byte("x")).Commit(); err != nil {
		t.Fatal(err)
	}
	if err := b.Delete(ctx, testKey); err != nil {
		t.Errorf("Delete = %v", err)
	}
	if _, err := b.ReadAll(ctx, testKey); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after Delete, ReadAll = %v, want fs.ErrNotExist", err)
	}
}

// List returns the keys under a prefix, sorted, whatever the separators,
// and neither the keys beside the prefix nor "directories".
func TestBucket_List_S3(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupS3(t).bucket
	for _, key := range []string{"r/a/b", "r/a-b", "r/a/a", "r-x", "s/x"} {
		if err := write(t, b, key, []byte(key)).Commit(); err != nil {
			t.Fatal(err)
		}
	}
	for prefix, want := range map[string][]string{
		"r/":    {"r/a-b", "r/a/a", "r/a/b"},
		"r/a/":  {"r/a/a", "r/a/b"},
		"r":     {"r-x", "r/a-b", "r/a/a", "r/a/b"},
		"":      {"r-x", "r/a-b", "r/a/a", "r/a/b", "s/x"},
		"none/": nil,
	} {
		if keys, err := b.List(ctx, prefix); err != nil || !slices.Equal(keys, want) {
			t.Errorf("List(%q) = %q, %v; want %q", prefix, keys, err, want)
		}
	}
}

// An S3 bucket is named by its URL without the query (the endpoint and
// region), in String and in errors.
func TestOpen_S3(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sb := setupS3(t)
	if sb.bucket.String() != sb.name {
		t.Errorf("String() = %q, want %q", sb.bucket.String(), sb.name)
	}

	// A parameter s3blob does not know fails Open, naming the bucket;
	// where gocloud quotes the URL, its values are masked.
	_, err := blobs.Open(ctx, sb.url+"&token=s3cr3t")
	if err == nil || !strings.Contains(err.Error(), "blobs: open "+sb.name+": ") ||
		strings.Contains(err.Error(), "s3cr3t") || strings.Contains(err.Error(), "127.0.0.1") {
		t.Errorf("Open with an unknown parameter = %v, want an error naming %s without the query's values", err, sb.name)
	}
}

// A bucket that does not exist opens (S3 URLs are not checked until used),
// and then every operation fails with ErrNoBucket: a configuration to fix,
// not a missing blob, so never fs.ErrNotExist, which would make the engine
// heal shuffle files that are not lost, nor a Delete that succeeds.
func TestBucket_S3_NoBucket(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	u, err := url.Parse(s3test.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	u.Host += "-missing"
	name := "s3://" + u.Host
	b, err := blobs.Open(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	_, readErr := b.ReadAll(ctx, testKey)
	_, listErr := b.List(ctx, "run-1/")
	commitErr := write(t, b, testKey, []byte("x")).Commit()
	for op, err := range map[string]error{
		"read":   readErr,
		"list":   listErr,
		"delete": b.Delete(ctx, testKey),
		"commit": commitErr,
	} {
		if !errors.Is(err, blobs.ErrNoBucket) || errors.Is(err, fs.ErrNotExist) ||
			!strings.Contains(err.Error(), "blobs: "+op+" "+name+"/") || !strings.HasSuffix(err.Error(), ": bucket does not exist") {
			t.Errorf("%s in a missing bucket = %v, want blobs.ErrNoBucket, not fs.ErrNotExist, naming %s", op, err, name)
		}
		if err != nil {
			noSecrets(t, err.Error())
		}
	}
	var werr *blobs.WriteError
	if !errors.As(commitErr, &werr) || werr.Op != "commit" || werr.Bucket != name || werr.Path != name+"/"+testKey || werr.Written != 1 {
		t.Errorf("Commit in a missing bucket = %v (%+v), want a *WriteError of commit naming %s/%s", commitErr, werr, name, testKey)
	}
}
