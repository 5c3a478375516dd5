package mrcli

import (
	"context"
	"errors"
	"net"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/mrengine/mr/internal/pgtest"
	"github.com/mrengine/mr/internal/testserver"
)

// uiTaskArgs stands for the args of a map task, so that the UI has a job
// of the kind mr's workers run to show.
type uiTaskArgs struct {
	Partition int `json:"partition"`
}

func (uiTaskArgs) Kind() string { return "map" }

// uiQueue is the queue the test's jobs go to, a name that appears on the
// page only if the UI read them.
const uiQueue = "mr_ui_test"

// runUI runs the mr command line args with mr ui among its commands, as
// Run would, and returns the command's error.
func runUI(ctx context.Context, out, errOut *syncBuffer, args ...string) error {
	return NewApp(out, errOut).RunContext(ctx, append([]string{"mr", "ui"}, args...))
}

// migrateRiver migrates the schema of dsn with mr migrate and returns an
// insert-only River client on it.
func migrateRiver(t *testing.T, dsn string) *river.Client[pgx.Tx] {
	t.Helper()
	if r := runMR(t, "migrate", "--coordinator", dsn); r.code != ExitOK {
		t.Fatalf("mr migrate: exit %d\n%s", r.code, r.stderr)
	}
	pool := pgtest.PoolFor(t, dsn)
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return client
}

// chromium returns the path of a headless-capable Chromium, or skips the
// test (fails it under CI=true, so CI never goes green by skipping).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	msg := "no Chromium to load the page in: apt-get install -y chromium"
	if testserver.InCI() {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// browserBudgetMS is the virtual time, in milliseconds, that headless
// Chromium gives the page's scripts before it dumps the DOM: the UI
// fetches its data from the API once its bundle has loaded, which takes
// well under a second here.
const browserBudgetMS = "10000"

// dumpDOM loads url in headless Chromium and returns the DOM after the
// page's scripts have run.
func dumpDOM(t *testing.T, browser, url string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, browser, "--headless=new", "--no-sandbox", "--disable-gpu",
		"--user-data-dir="+t.TempDir(), "--virtual-time-budget="+browserBudgetMS,
		"--dump-dom", url)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	dom, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium --dump-dom %s: %v\n%s", url, err, stderr.String())
	}
	return string(dom)
}

var uiLine = regexp.MustCompile(`(?m)^River UI for postgres://\S+ on (http://127\.0\.0\.1:[1-9]\d*/) \(Ctrl-C stops it\)$`)

// TestUI_Browser serves the UI for a coordinator holding two map tasks
// and loads its jobs page in a real headless browser: it lists both,
// with their kind, queue and args, which the page's scripts fetch from
// the API; and Ctrl-C (the context ending) stops the server with exit 0.
// (The queues page lists only queues that a worker has run, so it stays
// empty here.)
func TestUI_Browser(t *testing.T) {
	t.Parallel()
	browser := chromium(t)
	dsn := pgtest.DSN(t)
	client := migrateRiver(t, dsn)
	for p := range 2 {
		if _, err := client.Insert(t.Context(), uiTaskArgs{Partition: p}, &river.InsertOpts{Queue: uiQueue}); err != nil {
			t.Fatal(err)
		}
	}

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var out, errOut syncBuffer
	done := make(chan error, 1)
	go func() { done <- runUI(ctx, &out, &errOut, "--coordinator", dsn, "--addr", "127.0.0.1:0") }()
	var url string
	for deadline := time.Now().Add(30 * time.Second); url == ""; time.Sleep(20 * time.Millisecond) {
		select {
		case err := <-done:
			t.Fatalf("mr ui returned before serving: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errOut.String())
		default:
		}
		if m := uiLine.FindStringSubmatch(out.String()); m != nil {
			url = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("mr ui printed no URL in 30s; stdout:\n%s\nstderr:\n%s", out.String(), errOut.String())
		}
	}

	dom := dumpDOM(t, browser, url+"jobs?state=available")
	for _, want := range []string{`<span class="truncate">map</span>`, ">" + uiQueue + "<", `>{"partition":0}<`, `>{"partition":1}<`} {
		if !strings.Contains(dom, want) {
			t.Errorf("the jobs page lacks %q; DOM:\n%s", want, dom)
		}
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("mr ui after Ctrl-C: %v, want nil (exit 0)", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("mr ui still serves 10s after Ctrl-C")
	}
	if s := errOut.String(); s != "" {
		t.Errorf("mr ui wrote to stderr:\n%s", s)
	}
}

// TestUI_NotMigrated points mr ui at a coordinator without River's
// tables: before it listens, one error that says to run mr migrate with
// that coordinator, its password masked.
func TestUI_NotMigrated(t *testing.T) {
	t.Parallel()
	dsn := pgtest.PasswordDSN(t, pgtest.RolePassword)
	var out, errOut syncBuffer
	err := runUI(t.Context(), &out, &errOut, "--coordinator", dsn, "--addr", "127.0.0.1:0")
	if err == nil {
		t.Fatalf("mr ui on an empty coordinator: nil error; stdout:\n%s", out.String())
	}
	msg := err.Error()
	for _, want := range []string{"lacks River's tables", "Unapplied migrations: [1 ", "; run: mr migrate --coordinator 'postgres://" + pgtest.PasswordRole + "@"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, pgtest.RolePassword) || strings.Contains(out.String(), "http://") {
		t.Errorf("error %q shows the password, or mr ui served anyway; stdout:\n%s", msg, out.String())
	}
}

// TestUI_AddrInUse asks for a port that is taken: a usage error naming
// the address and suggesting :0.
func TestUI_AddrInUse(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dsn := pgtest.DSN(t)
	migrateRiver(t, dsn)
	var out, errOut syncBuffer
	err = runUI(t.Context(), &out, &errOut, "--coordinator", dsn, "--addr", ln.Addr().String())
	var usage *usageError
	if !errors.As(err, &usage) || !strings.Contains(err.Error(), "--addr "+ln.Addr().String()+": listen tcp") || !strings.Contains(err.Error(), " --addr :0") {
		t.Errorf("mr ui on a taken port: %v, want a usage error naming %s and suggesting :0", err, ln.Addr())
	}
}

// TestUI_UsageErrors checks the flag mistakes of mr ui: usage errors
// naming the flag, before any connection.
func TestUI_UsageErrors(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"NoCoordinator", nil, "mr ui needs --coordinator"},
		{"BadAddr", []string{"--coordinator", "postgres://u:secret@127.0.0.1:1/db", "--addr", "localhost"}, `invalid --addr "localhost"`},
		{"Arguments", []string{"jobs", "--coordinator", "postgres://127.0.0.1:1/db"}, "mr ui takes no arguments"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out, errOut syncBuffer
			err := runUI(t.Context(), &out, &errOut, tt.args...)
			var usage *usageError
			if !errors.As(err, &usage) || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "secret") {
				t.Errorf("mr ui %q: %v, want a usage error with %q and no password", tt.args, err, tt.want)
			}
		})
	}
}
