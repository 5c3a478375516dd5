package s3test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/mrengine/mr/internal/testserver"
)

const (
	// startTimeout bounds the gateway's start until it answers; it takes
	// well under a second, a loaded CI box longer.
	startTimeout = time.Minute
	// portAttempts bounds the retries when another process takes the free
	// port between our probe and the gateway's bind.
	portAttempts = 5
	// stopTimeout bounds a graceful stop before it escalates to SIGKILL.
	stopTimeout = 10 * time.Second
	// requestTimeout bounds one request of the harness's own after the
	// start (a CreateBucket, a page of Uploads); the gateway answers in
	// milliseconds. Readiness probes have a second each.
	requestTimeout = 10 * time.Second
)

var staticCredentials = credentials.NewStaticCredentialsProvider(AccessKey, SecretKey, "")

// server is a versitygw the harness owns: its directory, its process and
// a client for it.
type server struct {
	bin      string
	dir      string // holds data/ (see data) and versitygw.log
	endpoint string // http://127.0.0.1:<port>
	client   *s3.Client
	proc     *testserver.Process // the gateway; nil while stopped
	summary  string              // how the server came to be, logged by the first test
}

// startServer starts bin with the posix backend in a fresh directory and
// waits until it answers an authenticated request.
func startServer(bin string) (*server, error) {
	began := time.Now()
	dir, err := os.MkdirTemp("", "mr-s3test-")
	if err != nil {
		return nil, fmt.Errorf("server directory: %w", err)
	}
	s := &server{bin: bin, dir: dir}
	if err := s.startOnFreePort(); err != nil {
		return nil, errors.Join(err, s.shutdown())
	}
	s.summary = fmt.Sprintf("s3test: started versitygw (%s) in %s at %s, data in %s",
		bin, time.Since(began).Round(time.Millisecond), s.endpoint, s.data())
	return s, nil
}

// data is the posix backend's root: each directory in it is a bucket.
func (s *server) data() string { return filepath.Join(s.dir, "data") }

// startOnFreePort starts the gateway on a free port, and on another if
// someone takes that one first.
func (s *server) startOnFreePort() error {
	if err := os.Mkdir(s.data(), 0o700); err != nil {
		return fmt.Errorf("server directory: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	for attempt := 1; ; attempt++ {
		port, err := testserver.FreePort()
		if err != nil {
			return err
		}
		s.endpoint = "http://127.0.0.1:" + strconv.Itoa(port)
		s.client = client(s.endpoint)
		err = s.start(ctx, port)
		if err == nil || !errors.Is(err, errPortTaken) || attempt == portAttempts {
			return err
		}
	}
}

var errPortTaken = errors.New("port taken")

// start runs the gateway on port and waits until it answers.
func (s *server) start(ctx context.Context, port int) error {
	logPath := filepath.Join(s.dir, "versitygw.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logFile.Close() // the child has its own copy
	cmd := exec.Command(s.bin,
		"--port", "127.0.0.1:"+strconv.Itoa(port),
		"--region", Region,
		"--quiet", // no line per request
		"posix", s.data())
	// The keys go through the environment, which ps does not show.
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+AccessKey, "ROOT_SECRET_KEY="+SecretKey)
	cmd.Dir = s.dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = sysProcAttr()

	p, err := testserver.Start(cmd)
	if err != nil {
		return fmt.Errorf("start %s: %w", s.bin, err)
	}
	s.proc = p
	if err := s.waitReady(ctx); err != nil {
		_ = s.stop()
		log, _ := os.ReadFile(logPath)
		if bytes.Contains(log, []byte("address already in use")) {
			err = fmt.Errorf("%w: %w", errPortTaken, err)
		}
		err = fmt.Errorf("%s: %w", cmd, err)
		if out := testserver.Tail(log); out != "" {
			err = fmt.Errorf("%w; its output:\n%s", err, out)
		}
		return err
	}
	return nil
}

// waitReady polls until the gateway answers a ListBuckets with the
// harness's keys, its process exits, or ctx ends.
func (s *server) waitReady(ctx context.Context) error {
	for {
		reqCtx, cancel := context.WithTimeout(ctx, time.Second)
		// No SDK retries: their backoff would only delay the next probe.
		_, err := s.client.ListBuckets(reqCtx, &s3.ListBucketsInput{}, func(o *s3.Options) { o.Retryer = aws.NopRetryer{} })
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-s.proc.Exited():
			return fmt.Errorf("versitygw exited before answering: %v", s.proc.Err())
		case <-ctx.Done():
			return fmt.Errorf("versitygw did not answer in time: %w (last: %v)", ctx.Err(), err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (s *server) createBucket(ctx context.Context, name string) error {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	_, err := s.client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &name})
	return err
}

// stop asks the gateway to exit (SIGTERM) and waits for it, escalating to
// SIGKILL after stopTimeout.
func (s *server) stop() error {
	p := s.proc
	s.proc = nil
	if p == nil {
		return nil
	}
	return p.Stop(syscall.SIGTERM, stopTimeout, "versitygw")
}

// shutdown stops the gateway and removes its directory.
func (s *server) shutdown() error {
	err := s.stop()
	if rmErr := os.RemoveAll(s.dir); rmErr != nil {
		err = errors.Join(err, rmErr)
	}
	return err
}

// findBin returns the versitygw to run: $MR_VERSITYGW, versitygw on $PATH,
// or the one in go install's directory. Its error wraps errNoBin.
func findBin() (string, error) {
	if p := os.Getenv(EnvBin); p != "" {
		if !isExecutable(p) {
			return "", fmt.Errorf("%w: %s=%s is not an executable file", errNoBin, EnvBin, p)
		}
		return p, nil
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, nil
	}
	tried := []string{"$PATH"}
	if dir := goInstallDir(); dir != "" {
		p := filepath.Join(dir, "versitygw")
		if runtime.GOOS == "windows" {
			p += ".exe"
		}
		if isExecutable(p) {
			return p, nil
		}
		tried = append(tried, p)
	}
	return "", fmt.Errorf("%w: looked in %s", errNoBin, strings.Join(tried, ", "))
}

// goInstallDir is where go install puts binaries: $(go env GOBIN), else
// the bin directory of the first $(go env GOPATH) entry; "" if go cannot
// say.
func goInstallDir() string {
	out, err := exec.Command("go", "env", "GOBIN", "GOPATH").Output()
	if err != nil {
		return ""
	}
	gobin, gopath, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	if gobin = strings.TrimSpace(gobin); gobin != "" {
		return gobin
	}
	if first, _, _ := strings.Cut(strings.TrimSpace(gopath), string(os.PathListSeparator)); first != "" {
		return filepath.Join(first, "bin")
	}
	return ""
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && (runtime.GOOS == "windows" || fi.Mode()&0o111 != 0)
}
