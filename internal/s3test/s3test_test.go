package s3test_test

import (
	"context"
	"errors"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gocloud.dev/blob"
	_ "gocloud.dev/blob/s3blob"
	"gocloud.dev/gcerrors"

	"github.com/mrengine/mr/internal/s3test"
)

// helperURL names the variable that makes the test binary, run as a
// subprocess, act as a client of the gateway instead of running tests.
const helperURL = "S3TEST_HELPER_URL"

func open(t *testing.T, rawURL string) *blob.Bucket {
	t.Helper()
	b, err := blob.OpenBucket(context.Background(), rawURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// Two URLs are two empty buckets on one gateway, and neither holds a key.
func TestURL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	u1, u2 := s3test.URL(t), s3test.URL(t)
	for _, u := range []string{u1, u2} {
		if strings.Contains(u, s3test.AccessKey) || strings.Contains(u, s3test.SecretKey) {
			t.Errorf("URL %s holds the keys", u)
		}
	}
	p1, err1 := url.Parse(u1)
	p2, err2 := url.Parse(u2)
	if err := errors.Join(err1, err2); err != nil {
		t.Fatal(err)
	}
	if p1.Host == p2.Host || p1.Query().Get("endpoint") != p2.Query().Get("endpoint") {
		t.Errorf("URLs %s and %s: want two buckets on one endpoint", u1, u2)
	}

	b1, b2 := open(t, u1), open(t, u2)
	if err := b1.WriteAll(ctx, "k", []byte("one"), nil); err != nil {
		t.Fatal(err)
	}
	if got, err := b1.ReadAll(ctx, "k"); err != nil || string(got) != "one" {
		t.Errorf("ReadAll = %q, %v; want one", got, err)
	}
	if _, err := b2.ReadAll(ctx, "k"); gcerrors.Code(err) != gcerrors.NotFound {
		t.Errorf("the other bucket's ReadAll = %v, want NotFound", err)
	}
}

// A subprocess with nothing of the AWS configuration but Env reaches the
// gateway through the URL.
func TestEnv_Subprocess(t *testing.T) {
	t.Parallel()
	u := s3test.URL(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), helperURL + "=" + u}, s3test.Env()...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("subprocess: %v\n%s", err, out)
	}
	got, err := open(t, u).ReadAll(context.Background(), "from-subprocess")
	if err != nil || string(got) != "hello" {
		t.Errorf("ReadAll of what the subprocess wrote = %q, %v; want hello", got, err)
	}
}

// TestHelperProcess is the subprocess of TestEnv_Subprocess.
func TestHelperProcess(t *testing.T) {
	u := os.Getenv(helperURL)
	if u == "" {
		t.Skip("run by TestEnv_Subprocess")
	}
	if err := open(t, u).WriteAll(context.Background(), "from-subprocess", []byte("hello"), nil); err != nil {
		t.Fatal(err)
	}
}

// Without a gateway the tests skip saying how to install one, except under
// CI, where they fail.
func TestUnavailable(t *testing.T) {
	t.Parallel()
	noBin := errors.Join(s3test.ErrNoBin, errors.New("looked in $PATH"))
	crashed := errors.New("versitygw exited before answering")
	for _, tc := range []struct {
		name     string
		err      error
		ci       bool
		wantFail bool
		want     string
	}{
		{"MissingSkips", noBin, false, false, s3test.InstallHint},
		{"MissingFailsInCI", noBin, true, true, s3test.InstallHint},
		{"CrashSkips", crashed, false, false, "gateway's output"},
		{"CrashFailsInCI", crashed, true, true, "gateway's output"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			msg, fail := s3test.Unavailable(tc.err, tc.ci)
			if fail != tc.wantFail || !strings.Contains(msg, tc.err.Error()) || !strings.Contains(msg, tc.want) ||
				strings.Contains(msg, "skipped") == tc.ci {
				t.Errorf("Unavailable(%q, ci=%t) = %q, %t; want fail=%t and a message saying %q", tc.err, tc.ci, msg, fail, tc.wantFail, tc.want)
			}
		})
	}
}

// fakeBin writes an executable named versitygw into a new directory.
func fakeBin(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "versitygw")
	if err := os.WriteFile(p, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// FindBin looks at MR_VERSITYGW, then $PATH, then go install's directory.
// Not parallel: it sets the environment.
func TestFindBin(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go on $PATH to ask for GOBIN")
	}
	t.Run("Env", func(t *testing.T) {
		want := fakeBin(t)
		t.Setenv(s3test.EnvBin, want)
		if got, err := s3test.FindBin(); err != nil || got != want {
			t.Errorf("FindBin = %q, %v; want %s", got, err, want)
		}
	})
	t.Run("EnvMissing", func(t *testing.T) {
		missing := filepath.Join(t.TempDir(), "versitygw")
		t.Setenv(s3test.EnvBin, missing)
		t.Setenv("PATH", filepath.Dir(fakeBin(t))) // not looked at
		if _, err := s3test.FindBin(); !errors.Is(err, s3test.ErrNoBin) || !strings.Contains(err.Error(), missing) {
			t.Errorf("FindBin = %v, want errNoBin naming %s", err, missing)
		}
	})
	t.Run("Path", func(t *testing.T) {
		want := fakeBin(t)
		t.Setenv(s3test.EnvBin, "")
		t.Setenv("PATH", filepath.Dir(want))
		if got, err := s3test.FindBin(); err != nil || got != want {
			t.Errorf("FindBin = %q, %v; want %s", got, err, want)
		}
	})
	t.Run("GoBin", func(t *testing.T) {
		want := fakeBin(t)
		t.Setenv(s3test.EnvBin, "")
		t.Setenv("PATH", filepath.Dir(goBin))
		t.Setenv("GOBIN", filepath.Dir(want))
		if got, err := s3test.FindBin(); err != nil || got != want {
			t.Errorf("FindBin = %q, %v; want %s", got, err, want)
		}
	})
	t.Run("Nowhere", func(t *testing.T) {
		t.Setenv(s3test.EnvBin, "")
		t.Setenv("PATH", filepath.Dir(goBin))
		t.Setenv("GOBIN", t.TempDir())
		if _, err := s3test.FindBin(); !errors.Is(err, s3test.ErrNoBin) {
			t.Errorf("FindBin = %v, want errNoBin", err)
		}
	})
}

func TestBucketPrefixFor(t *testing.T) {
	t.Parallel()
	for arg0, want := range map[string]string{
		"/tmp/go-build1/b001/blobs.test":  "mr-blobs",
		"s3test.test":                     "mr-s3test",
		`C:\tmp\Weird_Name.test.exe`:      "mr-c--tmp-weird-name",
		strings.Repeat("x", 80) + ".test": "mr-" + strings.Repeat("x", 40),
	} {
		if got := s3test.BucketPrefixFor(arg0); got != want {
			t.Errorf("BucketPrefixFor(%q) = %q, want %q", arg0, got, want)
		}
	}
}

// A gateway that exits at once fails the start with its output, and
// leaves no directory behind. Not parallel: it sets TMPDIR.
func TestStartServer_Exits(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	bin := filepath.Join(t.TempDir(), "versitygw")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\necho 'no backend for you' >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := s3test.StartServer(bin); err == nil || !strings.Contains(err.Error(), "exited before answering") ||
		!strings.Contains(err.Error(), "no backend for you") {
		t.Errorf("StartServer of a gateway that exits = %v, want an error with its output", err)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("StartServer left %v in TMPDIR", left)
	}
}
