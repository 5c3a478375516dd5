// Package metrics serves a run's live counters to Prometheus, for mr run
// --metrics-addr: a Collector that reads mapreduce.Stats at each scrape,
// a private Registry that holds it with the Go runtime's and the
// process's collectors, and Serve, which serves the registry on /metrics.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/mrengine/mr/mapreduce"
)

// Collector is a prometheus.Collector over a run's Stats. It reads them
// once per scrape, on the scraping goroutine, so a run that nobody scrapes
// pays nothing for it.
//
// The counters (_total) count this process's work, as Prometheus expects
// of a counter, which restarts from zero with its process: work committed
// by earlier attempts of a resumed run is in the mr_*_resumed gauges
// instead.
type Collector struct {
	statsFunc func() mapreduce.Stats
}

// NewCollector returns a Collector over stats, typically a Runner's Stats
// method; stats must be safe to call from any goroutine.
func NewCollector(stats func() mapreduce.Stats) *Collector {
	return &Collector{statsFunc: stats}
}

// NewRegistry returns a registry of its own (not prometheus's global one,
// which would mix in whatever else registers there) holding a Collector
// over stats and the Go runtime's and the process's collectors.
func NewRegistry(stats func() mapreduce.Stats) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		NewCollector(stats),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}

func newDesc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("mr_"+name, help, labels, nil)
}

var (
	runInfo = newDesc("run_info", "The run being served: its job and run id, with value 1.", "job", "run")
	phase   = newDesc("phase", "The run's phase: 1 for the current one (planned, map, reduce, done), 0 for the others.", "phase")

	rowsPlanned = newDesc("rows_planned", "Rows in the input as the plan counted them, an estimate for large tables.")
	rowsRead    = newDesc("rows_read_total", "Rows this process read from the source, committed or not.")
	rowsResumed = newDesc("rows_resumed", "Rows committed by earlier attempts of the run, which this process does not read again.")
	rowsFailed  = newDesc("rows_failed_total", "Rows this process committed to the dead-letter queue, their retries spent.")
	chunks      = newDesc("chunks_read_total", "Keyset chunks this process read from the source.")
	spilled     = newDesc("spilled_bytes_total", "Bytes of shuffle files this process committed.")
	groups      = newDesc("groups_written_total", "Output rows this process wrote to the sink.")
	retries     = newDesc("retries_total", "Retries this process made: of a row's Map (kind row), of a bucket's reduce (kind bucket).", "kind")

	partitions        = newDesc("partitions", "Partitions (map tasks) in the plan.")
	partitionsDone    = newDesc("partitions_done", "Partitions whose map task has finished, in earlier attempts too.")
	partitionsResumed = newDesc("partitions_resumed", "Partitions that had a checkpoint when this attempt began.")
	buckets           = newDesc("buckets", "Buckets (reduce tasks) in the plan.")
	bucketsDone       = newDesc("buckets_done", "Buckets applied to the sink, in earlier attempts too.")
	bucketsResumed    = newDesc("buckets_resumed", "Buckets that earlier attempts had applied to the sink.")
)

// Describe sends the descriptors of every metric the Collector yields.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		runInfo, phase, rowsPlanned, rowsRead, rowsResumed, rowsFailed, chunks, spilled, groups, retries,
		partitions, partitionsDone, partitionsResumed, buckets, bucketsDone, bucketsResumed,
	} {
		ch <- d
	}
}

// Collect reads the Stats and sends them as metrics.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	s := c.statsFunc()
	gauge := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), labels...)
	}
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge(runInfo, 1, s.Job, s.RunID)
	for _, p := range mapreduce.Phases {
		var v int64
		if p == s.Phase {
			v = 1
		}
		gauge(phase, v, p)
	}
	gauge(rowsPlanned, s.Planned)
	counter(rowsRead, s.Read)
	gauge(rowsResumed, s.Resumed)
	counter(rowsFailed, s.Failed-s.FailedResumed)
	counter(chunks, s.Chunks)
	counter(spilled, s.BytesSpilled-s.BytesSpilledResumed)
	counter(groups, s.Groups)
	counter(retries, s.RowRetries, "row")
	counter(retries, s.BucketRetries, "bucket")
	gauge(partitions, int64(s.Partitions))
	gauge(partitionsDone, int64(s.PartitionsDone))
	gauge(partitionsResumed, int64(s.PartitionsResumed))
	gauge(buckets, int64(s.Buckets))
	gauge(bucketsDone, int64(s.BucketsDone))
	gauge(bucketsResumed, int64(s.BucketsResumed))
}
