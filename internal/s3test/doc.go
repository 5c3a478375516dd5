// Package s3test gives tests a real S3 server on loopback: versitygw
// (github.com/versity/versitygw) with its posix backend, started once per
// test binary, on first use, in a temporary directory, and stopped with
// the directory removed by Main or Run from TestMain:
//
//	func TestMain(m *testing.M) { s3test.Main(m) }
//
//	url := s3test.URL(t) // a fresh, empty bucket
//	b, err := blobs.Open(ctx, url)
//
// # URLs and credentials
//
// URL returns a gocloud.dev/blob/s3blob URL:
//
//	s3://<bucket>?endpoint=http%3A%2F%2F127.0.0.1%3A<port>&region=us-east-1&use_path_style=true
//
// The endpoint names the gateway with its http scheme (so the SDK never
// tries TLS), and path-style addressing keeps the bucket out of the host
// name, which cannot resolve on loopback. s3blob (v0.47.0, AWS SDK v2)
// takes no credentials in the URL: the SDK's default chain finds them. So
// the harness sets Env in its own process before it hands out a URL, and a
// test that runs the mr binary as a subprocess must pass Env to it too
// (cmd.Env = append(os.Environ(), s3test.Env()...)). Env also blanks the
// variables that would make the SDK prefer a developer's own AWS profile,
// session token or endpoint, and points the shared config files at
// os.DevNull, so tests never read ~/.aws. Because every test of the binary
// shares that environment, tests that talk to real AWS cannot run in a
// binary that uses s3test.
//
// The keys are AccessKey and SecretKey, fixed so that a test can check
// that no message prints them; they are passed to the gateway through its
// environment, not its command line.
//
// # Finding versitygw
//
// The binary is $MR_VERSITYGW if set, else versitygw on $PATH, else the one
// go install leaves in $(go env GOBIN) or $(go env GOPATH)/bin. Without it
// the tests that need S3 skip, saying how to install it; with CI=true they
// fail instead, so that CI never passes without having run them.
//
// Buckets are not deleted after their test: they go with the server's
// directory when the binary ends. On Linux the gateway also dies with the
// test binary, however that dies.
package s3test
