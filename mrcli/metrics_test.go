package mrcli

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/mrengine/mr/internal/crashpoint"
	"github.com/mrengine/mr/internal/eventgen"
)

// syncBuffer is a bytes.Buffer that a test may read while a run writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var metricsLine = regexp.MustCompile(`(?m)^metrics (http://127\.0\.0\.1:\d+/metrics)$`)

// TestRun_MetricsAddr runs a job with --metrics-addr 127.0.0.1:0 and
// scrapes its metrics from inside the map phase, when the first map task
// has spilled: the run says where they are, they count the run's rows
// while it runs, and nothing serves them once it has returned.
func TestRun_MetricsAddr(t *testing.T) {
	t.Parallel()
	source := seedEvents(t, eventgen.Config{Rows: 2000, Seed: 3})
	var out, errOut syncBuffer
	var once sync.Once
	var page string
	var scrapeErr error
	ctx := crashpoint.WithHook(context.Background(), func(point string) {
		if point != crashpoint.MapSpilled {
			return
		}
		once.Do(func() {
			m := metricsLine.FindStringSubmatch(out.String())
			if m == nil {
				page = "no metrics line before the map phase"
				return
			}
			resp, err := http.Get(m[1])
			if err != nil {
				scrapeErr = err
				return
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			page, scrapeErr = string(b), err
		})
	})
	args := []string{"mr", "run", "daily_rollup", "--source", source, "--workdir", t.TempDir(),
		"--partitions", "2", "--buckets", "2", "--workers", "1", "--chunk-size", "100", "--metrics-addr", "127.0.0.1:0"}
	if code := Run(ctx, args, &out, &errOut); code != ExitOK {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut.String())
	}
	if scrapeErr != nil {
		t.Fatalf("scraping during the run: %v", scrapeErr)
	}
	for _, want := range []string{`mr_phase{phase="map"} 1`, `mr_run_info{job="daily_rollup",run="daily_rollup-`, "\nmr_rows_planned 2000\n", "\nmr_partitions 2\n"} {
		if !strings.Contains(page, want) {
			t.Errorf("the metrics during the map phase lack %q:\n%s", want, page)
		}
	}
	if m := regexp.MustCompile(`\nmr_rows_read_total (\d+)\n`).FindStringSubmatch(page); m == nil || m[1] == "0" {
		t.Errorf("the metrics during the map phase count no rows read: %v", m)
	}
	url := metricsLine.FindStringSubmatch(out.String())[1]
	if resp, err := http.Get(url); err == nil {
		resp.Body.Close()
		t.Errorf("%s still serves after the run: %s", url, resp.Status)
	}
}

// TestRun_MetricsAddrInUse asks for a port that is taken: a usage error
// naming the address, before any row is read.
func TestRun_MetricsAddrInUse(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	source := seedEvents(t, eventgen.Config{Rows: 100, Seed: 3})
	r := runMR(t, "run", "daily_rollup", "--source", source, "--workdir", t.TempDir(), "--metrics-addr", ln.Addr().String())
	if r.code != ExitUsage || !strings.Contains(r.stderr, "--metrics-addr "+ln.Addr().String()+": serve metrics: listen tcp") ||
		!strings.Contains(r.stderr, ":0 for a free port") || strings.Contains(r.stdout, "items") {
		t.Errorf("exit %d, want %d and a message naming the address; stdout:\n%s\nstderr:\n%s", r.code, ExitUsage, r.stdout, r.stderr)
	}
}
