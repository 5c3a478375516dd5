package benchmarks

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"

	"github.com/mrengine/mr/jobs"
	"github.com/mrengine/mr/mapreduce"
)

// BenchmarkScaling runs daily_rollup on PostgreSQL (source and sink, Fresh,
// default workers) over growing inputs: 1M, 3M, 10M (-mr.rows10m) and 30M
// (-mr.rows30m) rows. rows/s should stay roughly flat, and the heap
// should grow with the number of groups only until the memory budget
// (512 MiB by default) caps the combine tables; rss-x-memory is peak
// RSS over the budget, which must stay at most 4:
// peak-heap-MiB is the largest HeapInuse (garbage not yet collected
// included) sampled every 20ms during the run, peak-rss-MiB the process's
// VmHWM, reset before the run where Linux allows it. The benchmarks that
// keep generated rows in memory drop them when they end, so that these
// figures are the run's own.
//
//	go test ./benchmarks -run '^$' -bench Scaling -benchtime 1x [-mr.rows10m] [-mr.rows30m]
func BenchmarkScaling(b *testing.B) {
	def, err := jobs.Lookup("daily_rollup")
	if err != nil {
		b.Fatal(err)
	}
	for _, rows := range []int64{heavyRows, rows3M, hugeRows, giantRows} {
		b.Run(rowsName(rows), func(b *testing.B) {
			skipUnlessAllowed(b, rows)
			ev := seededPostgres(b, rows)
			conn := connect(b, ev.dsn)
			src, sink := openPostgres(b, ev.dsn)
			phases := newPhaseTimer()
			cfg := benchConfig(b)
			cfg.Progress = phases
			var s mapreduce.Summary
			var heap, rss uint64
			var mapPhase, reducePhase time.Duration
			b.SetBytes(ev.bytes)
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				execAll(b, conn, "DROP TABLE IF EXISTS daily_rollup, mr_bucket_commits")
				debug.FreeOSMemory() // start from the live heap, not an earlier run's garbage
				resetPeakRSS := resetVmHWM()
				sampler := sampleHeap(20 * time.Millisecond)
				b.StartTimer()
				s, err = mapreduce.Run(context.Background(), def, src, sink, cfg)
				b.StopTimer()
				heap = max(heap, sampler.stop())
				mapPhase += phases.phase(mapreduce.PhaseMap)
				reducePhase += phases.phase(mapreduce.PhaseReduce)
				if resetPeakRSS {
					rss = max(rss, vmHWM())
				}
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			perRun := b.Elapsed() / time.Duration(b.N)
			b.ReportMetric(float64(rows)/perRun.Seconds(), "rows/s")
			b.ReportMetric(float64(s.Groups), "groups")
			b.ReportMetric(float64(s.BytesSpilled)/(1<<20), "spilled-MiB")
			b.ReportMetric(float64(heap)/(1<<20), "peak-heap-MiB")
			b.ReportMetric(mapPhase.Seconds()/float64(b.N), "map-s")
			b.ReportMetric(reducePhase.Seconds()/float64(b.N), "reduce-s")
			if rss > 0 {
				b.ReportMetric(float64(rss)/(1<<20), "peak-rss-MiB")
				b.ReportMetric(float64(rss)/float64(cfg.Memory), "rss-x-memory")
				if rss > 4*uint64(cfg.Memory) {
					b.Errorf("peak RSS %d MiB is above 4 × --memory (%d MiB)", rss>>20, cfg.Memory>>20)
				}
			}
			b.Logf("%s", s)
		})
	}
}

// heapSampler records the largest HeapInuse (heap objects plus the unused
// part of their spans, as runtime/metrics names them) it sees.
type heapSampler struct {
	done chan struct{}
	peak chan uint64
}

func sampleHeap(every time.Duration) *heapSampler {
	h := &heapSampler{done: make(chan struct{}), peak: make(chan uint64)}
	samples := []metrics.Sample{
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/unused:bytes"},
	}
	read := func() uint64 {
		metrics.Read(samples)
		return samples[0].Value.Uint64() + samples[1].Value.Uint64()
	}
	go func() {
		tick := time.NewTicker(every)
		defer tick.Stop()
		peak := read()
		for {
			select {
			case <-tick.C:
				peak = max(peak, read())
			case <-h.done:
				h.peak <- max(peak, read())
				return
			}
		}
	}()
	return h
}

// stop ends the sampling and returns the peak.
func (h *heapSampler) stop() uint64 {
	close(h.done)
	return <-h.peak
}

// resetVmHWM resets the process's peak resident set size (Linux 4.0 and
// later), reporting whether it could.
func resetVmHWM() bool {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
}

// vmHWM returns the process's peak resident set size in bytes, or 0 where
// /proc/self/status does not tell.
func vmHWM() uint64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		rest, ok := bytes.CutPrefix(sc.Bytes(), []byte("VmHWM:"))
		if !ok {
			continue
		}
		var kb uint64
		if _, err := fmt.Sscan(string(bytes.TrimSuffix(bytes.TrimSpace(rest), []byte("kB"))), &kb); err == nil {
			return kb << 10
		}
	}
	return 0
}
