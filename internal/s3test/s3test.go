package s3test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/mrengine/mr/internal/testserver"
)

// The root account of the gateway, whose keys Env hands to the SDK.
const (
	AccessKey = "mrs3testaccess"
	SecretKey = "mrs3testsecret-not-a-real-key"
)

// Region is the region the gateway serves and URLs sign requests for:
// SigV4 signatures name it, and the gateway rejects any other.
const Region = "us-east-1"

// EnvBin names the environment variable that points s3test at the
// versitygw binary, ahead of $PATH and $(go env GOPATH)/bin.
const EnvBin = "MR_VERSITYGW"

// installHint says how to get the gateway, in skip and failure messages.
// The version is the one .ci/run installs.
const installHint = "go install github.com/versity/versitygw/cmd/versitygw@v1.8.0"

// Main runs the tests of a package and exits; call it from TestMain:
//
//	func TestMain(m *testing.M) { s3test.Main(m) }
func Main(m *testing.M) { os.Exit(Run(m)) }

// Run runs the tests, then stops the gateway s3test started, if any, and
// removes its directory. It returns the exit code for os.Exit: m.Run's, or
// 1 if the tests passed but the shutdown failed. URL called after Run
// fails its test.
func Run(m *testing.M) int { return Stop(m.Run()) }

// Stop stops the gateway s3test started, if any, and removes its
// directory, after tests that code ended with: the exit code for os.Exit
// is code, or 1 if the tests passed but the shutdown failed. It is Run's
// end, for a TestMain that runs the tests through another harness
// (pgtest.Run).
func Stop(code int) int {
	if err := shutdown(); err != nil {
		fmt.Fprintf(os.Stderr, "s3test: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// Env returns the environment, as KEY=value, that the AWS SDK needs to
// reach the gateway with URL's URLs: the gateway's keys, and blanks for
// what would override them (see the package documentation). The harness
// sets it in its own process; pass it to subprocesses.
func Env() []string {
	return []string{
		"AWS_ACCESS_KEY_ID=" + AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + SecretKey,
		"AWS_REGION=" + Region,
		"AWS_SESSION_TOKEN=",
		"AWS_PROFILE=",
		"AWS_DEFAULT_PROFILE=",
		"AWS_ENDPOINT_URL=",
		"AWS_ENDPOINT_URL_S3=",
		"AWS_CONFIG_FILE=" + os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE=" + os.DevNull,
	}
}

// URL creates a fresh, empty bucket on the gateway, starting the gateway
// on first use, and returns its s3blob URL (see the package
// documentation). The URL holds no secret. Without versitygw it skips t,
// or fails it under CI=true.
func URL(t testing.TB) string {
	t.Helper()
	s := get(t)
	name := nextBucketName()
	if err := s.createBucket(t.Context(), name); err != nil {
		t.Fatalf("s3test: create bucket %s: %v", name, err)
	}
	return bucketURL(name, s.endpoint)
}

// Uploads returns the keys of the multipart uploads begun in the bucket of
// rawURL (a URL from URL) and neither completed nor aborted: what an
// aborted or failed write must not leave behind, since S3 keeps their
// parts, invisible to List and billed, until they are aborted.
func Uploads(t testing.TB, rawURL string) []string {
	t.Helper()
	s := get(t)
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatalf("s3test: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), requestTimeout)
	defer cancel()
	var keys []string
	p := s3.NewListMultipartUploadsPaginator(s.client, &s3.ListMultipartUploadsInput{Bucket: &u.Host})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatalf("s3test: list multipart uploads of %s: %v", u.Host, err)
		}
		for _, up := range page.Uploads {
			keys = append(keys, *up.Key)
		}
	}
	return keys
}

// bucketURL is the s3blob URL of bucket on the gateway at endpoint.
func bucketURL(bucket, endpoint string) string {
	q := url.Values{
		"endpoint":       {endpoint},
		"region":         {Region},
		"use_path_style": {"true"},
	}
	return "s3://" + bucket + "?" + q.Encode()
}

var (
	once     sync.Once
	srv      *server
	errSetup error

	bucketPrefix = bucketPrefixFor(os.Args[0])
	bucketSeq    atomic.Int64
	errStopped   = errors.New("s3test: URL was called after s3test.Run's m.Run returned")
)

// get returns the server, starting it on first use, or skips or fails t if
// there is none to test against.
func get(t testing.TB) *server {
	t.Helper()
	first := false
	once.Do(func() {
		first = true
		srv, errSetup = setup()
	})
	if errSetup != nil {
		if errors.Is(errSetup, errStopped) {
			t.Fatal(errSetup)
		}
		msg, fail := unavailable(errSetup, testserver.InCI())
		if fail {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	if first {
		t.Log(srv.summary)
	}
	return srv
}

// setup sets Env in this process, for the SDK that s3blob builds, and
// starts the gateway.
func setup() (*server, error) {
	for _, kv := range Env() {
		k, v, _ := strings.Cut(kv, "=")
		if err := os.Setenv(k, v); err != nil {
			return nil, err
		}
	}
	bin, err := findBin()
	if err != nil {
		return nil, err
	}
	return startServer(bin)
}

// errNoBin marks a versitygw that could not be found, as opposed to one
// that would not start.
var errNoBin = errors.New("found no versitygw")

// unavailable says why there is no S3 server for tests and what to do,
// and whether that fails the test (under CI, where every test must run)
// rather than skipping it.
func unavailable(err error, ci bool) (msg string, fail bool) {
	fix := installHint + ", or set " + EnvBin + "=/path/to/versitygw"
	if !errors.Is(err, errNoBin) {
		fix = "see the gateway's output, if any, above; or point " + EnvBin + " at another versitygw"
	}
	msg = fmt.Sprintf("s3test: no S3 server for tests: %v\n\tto fix: %s", err, fix)
	if ci {
		return msg, true
	}
	return msg + "\n\t(skipped; with CI=true this fails)", false
}

// shutdown stops the server. It also ends the Once, so that a later URL
// fails instead of starting a server nobody stops.
func shutdown() error {
	once.Do(func() { errSetup = errStopped })
	if srv == nil {
		return nil
	}
	err := srv.shutdown()
	errSetup, srv = errStopped, nil
	return err
}

// nextBucketName returns a bucket name not used before in this binary:
// S3 names are 3 to 63 lowercase letters, digits and hyphens.
func nextBucketName() string {
	return bucketPrefix + "-" + strconv.FormatInt(bucketSeq.Add(1), 10)
}

// bucketPrefixFor names the buckets of the test binary arg0 after its
// package ("blobs.test" → "blobs"), so that a bucket in a log says whose it
// is.
func bucketPrefixFor(arg0 string) string {
	name := strings.Trim(testserver.PackageName(arg0, '-'), "-")
	// Room for "-" and a sequence number within S3's 63.
	if len(name) > 40 {
		name = name[:40]
	}
	return "mr-" + name
}

// client is the S3 client the harness itself uses, for readiness and
// buckets (gocloud's portable API creates none).
func client(endpoint string) *s3.Client {
	return s3.New(s3.Options{
		BaseEndpoint: &endpoint,
		Region:       Region,
		UsePathStyle: true,
		Credentials:  staticCredentials,
	})
}
