package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/mrengine/mr/internal/metrics"
	"github.com/mrengine/mr/mapreduce"
	"github.com/mrengine/mr/mapreduce/mapreducetest"
)

// pageJob counts rows per page. A row without a page fails for good; a
// row of page "flaky" fails its first attempt, so that the run retries.
func pageJob(t *testing.T) *mapreduce.Job[string, int64] {
	t.Helper()
	var mu sync.Mutex
	tried := map[int64]bool{}
	j := &mapreduce.Job[string, int64]{
		Name:   "pages",
		Input:  mapreduce.Input{Table: "hits", Columns: []string{"page"}},
		Output: mapreduce.Output{Table: "page_hits"},
		Key: mapreduce.Codec[string]{
			Fields: []mapreduce.Field{{Name: "page", Type: mapreduce.TypeString}},
			Encode: func(k string, e mapreduce.Encoder) { e.String(k) },
			Decode: func(d mapreduce.Decoder) string { return d.String() },
		},
		Value: mapreduce.Codec[int64]{
			Fields: []mapreduce.Field{{Name: "hits", Type: mapreduce.TypeInt64}},
			Encode: func(v int64, e mapreduce.Encoder) { e.Int64(v) },
			Decode: func(d mapreduce.Decoder) int64 { return d.Int64() },
		},
		Map: func(_ context.Context, row mapreduce.Row, emit func(string, int64)) error {
			if row.Null(0) {
				return mapreduce.Permanent(errors.New("no page"))
			}
			if row.String(0) == "flaky" {
				mu.Lock()
				first := !tried[row.Cursor()]
				tried[row.Cursor()] = true
				mu.Unlock()
				if first {
					return errors.New("flaky page")
				}
			}
			emit(row.String(0), 1)
			return nil
		},
		Combine: mapreduce.AddInt64,
	}
	if err := j.Validate(); err != nil {
		t.Fatal(err)
	}
	return j
}

// hits is the fixture: 60 rows over 7 pages, 5 without a page and 5 of
// page "flaky".
func hits() mapreducetest.Table {
	tab := mapreducetest.Table{
		Name:    "hits",
		Columns: []mapreducetest.Column{{Name: "id", Type: "bigint primary key"}, {Name: "page", Type: "text"}},
	}
	for id := 1; id <= 60; id++ {
		var page any = fmt.Sprintf("/p%d", id%6)
		switch {
		case id%12 == 0:
			page = nil
		case id%10 == 0:
			page = "flaky"
		}
		tab.Rows = append(tab.Rows, []any{id, page})
	}
	return tab
}

// scrape GETs url and returns its samples by name and labels, as
// `name{label="value",…}` with the labels in order.
func scrape(url string) (map[string]float64, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, err
	}
	samples := map[string]float64{}
	for name, f := range families {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			sort.Strings(labels)
			key := name
			if len(labels) > 0 {
				key += "{" + strings.Join(labels, ",") + "}"
			}
			switch {
			case m.Counter != nil:
				samples[key] = m.GetCounter().GetValue()
			case m.Gauge != nil:
				samples[key] = m.GetGauge().GetValue()
			case m.Untyped != nil:
				samples[key] = m.GetUntyped().GetValue()
			}
		}
	}
	return samples, nil
}

// currentPhase returns the phase that mr_phase says, or "" if it says
// none or several.
func currentPhase(samples map[string]float64) string {
	var cur []string
	for _, p := range mapreduce.Phases {
		if samples[fmt.Sprintf("mr_phase{phase=%q}", p)] == 1 {
			cur = append(cur, p)
		}
	}
	if len(cur) != 1 {
		return ""
	}
	return cur[0]
}

// scrapeAtStart is a Progress that scrapes the metrics endpoint as each
// phase starts, on the goroutine that runs the phase.
type scrapeAtStart struct {
	url    string
	mu     sync.Mutex
	phases []string
	errs   []error
}

func (p *scrapeAtStart) Start(string, int64, int64) {
	samples, err := scrape(p.url)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.errs = append(p.errs, err)
	p.phases = append(p.phases, currentPhase(samples))
}
func (p *scrapeAtStart) Add(string, int64) {}
func (p *scrapeAtStart) Finish(string)     {}

func TestServe_Run(t *testing.T) {
	t.Parallel()
	h := mapreducetest.New(t, mapreducetest.Options{})
	h.Load(t, hits())
	var runner *mapreduce.Runner // set before any scrape: the first is in Run
	reg := metrics.NewRegistry(func() mapreduce.Stats { return runner.Stats() })
	addr, stop, err := metrics.Serve(t.Context(), "127.0.0.1:0", reg)
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + addr.String() + "/metrics"
	cfg := mapreducetest.Config(t)
	prog := &scrapeAtStart{url: url}
	cfg.Progress = prog
	if runner, err = mapreduce.Open(t.Context(), pageJob(t), h.Source(), h.Sink(), cfg); err != nil {
		t.Fatal(err)
	}
	defer runner.Close()

	// Scrape without pause while the run runs, as a tight Prometheus would.
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
				if _, err := scrape(url); err != nil {
					t.Errorf("scrape during the run: %v", err)
					return
				}
			}
		}
	})
	s, err := runner.Run(t.Context())
	close(done)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}

	if err := errors.Join(prog.errs...); err != nil {
		t.Fatalf("scrape as a phase started: %v", err)
	}
	if want := []string{mapreduce.PhaseMap, mapreduce.PhaseReduce}; !equal(prog.phases, want) {
		t.Errorf("mr_phase as the phases started: %q, want %q", prog.phases, want)
	}
	got, err := scrape(url)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{
		fmt.Sprintf("mr_run_info{job=%q,run=%q}", "pages", s.RunID): 1,
		`mr_phase{phase="done"}`:                                    1,
		`mr_phase{phase="map"}`:                                     0,
		"mr_rows_planned":                                           60,
		"mr_rows_read_total":                                        float64(s.Read),
		"mr_rows_failed_total":                                      float64(s.Failed),
		"mr_groups_written_total":                                   float64(s.Groups),
		"mr_spilled_bytes_total":                                    float64(s.BytesSpilled),
		"mr_chunks_read_total":                                      float64(s.Chunks),
		"mr_partitions":                                             float64(s.Partitions),
		"mr_partitions_done":                                        float64(s.Partitions),
		"mr_buckets":                                                float64(s.Buckets),
		"mr_buckets_done":                                           float64(s.Buckets),
		`mr_retries_total{kind="row"}`:                              5,
		`mr_retries_total{kind="bucket"}`:                           0,
	}
	for k, w := range want {
		if v, ok := got[k]; !ok || v != w {
			t.Errorf("after the run, %s = %v (present %t), want %v", k, v, ok, w)
		}
	}
	if s.Read != 60 || s.Failed != 5 || s.Groups != 7 {
		t.Errorf("summary %v: want 60 rows read, 5 failed, 7 groups", s)
	}
	if got["go_goroutines"] == 0 || got["process_start_time_seconds"] == 0 {
		t.Errorf("the Go and process collectors are missing: go_goroutines %v, process_start_time_seconds %v",
			got["go_goroutines"], got["process_start_time_seconds"])
	}

	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if err := stop(); err != nil {
		t.Errorf("second stop: %v", err)
	}
	if _, err := scrape(url); err == nil {
		t.Error("the endpoint still answers after stop")
	}
}

func equal(a, b []string) bool { return strings.Join(a, ",") == strings.Join(b, ",") }

// TestRegistry_Lint checks every name served against the Prometheus
// linter (a counter's _total, base units, help on every metric).
func TestRegistry_Lint(t *testing.T) {
	t.Parallel()
	stats := func() mapreduce.Stats {
		return mapreduce.Stats{Job: "pages", RunID: "pages-0123", Phase: mapreduce.PhaseMap, Planned: 10, Read: 4, Partitions: 2, Buckets: 2}
	}
	problems, err := testutil.GatherAndLint(metrics.NewRegistry(stats))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
	if n := testutil.CollectAndCount(metrics.NewCollector(stats)); n < 15 {
		t.Errorf("the collector yields %d metrics, want every one", n)
	}
}

// TestCollector_Resumed checks that the counters leave out the work of
// earlier attempts, which the _resumed gauges hold.
func TestCollector_Resumed(t *testing.T) {
	t.Parallel()
	c := metrics.NewCollector(func() mapreduce.Stats {
		return mapreduce.Stats{
			Phase: mapreduce.PhaseReduce, Read: 70, Resumed: 30, Processed: 100,
			Failed: 9, FailedResumed: 4, BytesSpilled: 1000, BytesSpilledResumed: 300,
			Partitions: 4, PartitionsDone: 4, PartitionsResumed: 2, Buckets: 3, BucketsDone: 1, BucketsResumed: 1,
		}
	})
	const want = `
# HELP mr_rows_failed_total Rows this process committed to the dead-letter queue, their retries spent.
# TYPE mr_rows_failed_total counter
mr_rows_failed_total 5
# HELP mr_spilled_bytes_total Bytes of shuffle files this process committed.
# TYPE mr_spilled_bytes_total counter
mr_spilled_bytes_total 700
# HELP mr_rows_resumed Rows committed by earlier attempts of the run, which this process does not read again.
# TYPE mr_rows_resumed gauge
mr_rows_resumed 30
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "mr_rows_failed_total", "mr_spilled_bytes_total", "mr_rows_resumed"); err != nil {
		t.Error(err)
	}
}

func TestServe_AddressInUse(t *testing.T) {
	t.Parallel()
	addr, stop, err := metrics.Serve(t.Context(), "127.0.0.1:0", metrics.NewRegistry(func() mapreduce.Stats { return mapreduce.Stats{} }))
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if _, _, err := metrics.Serve(t.Context(), addr.String(), nil); err == nil || !strings.Contains(err.Error(), addr.String()) {
		t.Errorf("Serve on %s, which is taken = %v, want an error naming it", addr, err)
	}
}
