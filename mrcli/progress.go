package mrcli

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/mrengine/mr/internal/pg"
	"github.com/mrengine/mr/mapreduce"
)

// progress is a mapreduce.Progress that must be closed after the run,
// with the run's error.
type progress interface {
	mapreduce.Progress
	Close(err error)
}

// logEvery is how often log lines report a phase's progress: often enough
// to see a run move, rarely enough to keep a long run's log short.
const logEvery = 5 * time.Second

// newProgress returns how a run reports to errOut, and the logger for the
// engine's log lines. On a terminal: a progress bar per phase, and only
// warnings logged (the bars say the rest). Elsewhere (a pipe, a file, CI):
// log lines, a few per phase.
func newProgress(errOut io.Writer) (progress, *slog.Logger) {
	if f, ok := errOut.(*os.File); ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd())) {
		log := slog.New(slog.NewTextHandler(errOut, &slog.HandlerOptions{Level: slog.LevelWarn}))
		return newBars(errOut), log
	}
	log := slog.New(slog.NewTextHandler(errOut, nil))
	return &logLines{log: log, every: logEvery, phases: map[string]*phaseLog{}}, log
}

// units names what each phase counts.
var units = map[string]string{mapreduce.PhaseMap: "rows", mapreduce.PhaseReduce: "buckets"}

// bars shows one mpb progress bar per phase.
type bars struct {
	p    *mpb.Progress
	mu   sync.Mutex
	bars map[string]*mpb.Bar
}

func newBars(w io.Writer) *bars {
	return &bars{p: mpb.New(mpb.WithOutput(w), mpb.WithWidth(40)), bars: map[string]*mpb.Bar{}}
}

func (b *bars) Start(phase string, total, done int64) {
	bar := b.p.New(total, mpb.BarStyle(),
		mpb.PrependDecorators(
			decor.Name(fmt.Sprintf("%-6s", phase)),
			decor.CountersNoUnit("%d / %d "+units[phase], decor.WCSyncWidth),
		),
		mpb.AppendDecorators(
			decor.Percentage(decor.WC{W: 5}),
			decor.OnComplete(decor.AverageETA(decor.ET_STYLE_GO, decor.WC{W: 8}), "  done"),
		),
	)
	bar.SetCurrent(done)
	b.mu.Lock()
	b.bars[phase] = bar
	b.mu.Unlock()
}

func (b *bars) bar(phase string) *mpb.Bar {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.bars[phase]
}

func (b *bars) Add(phase string, n int64) {
	if bar := b.bar(phase); bar != nil {
		bar.IncrInt64(n)
	}
}

// Finish leaves the bar as it is: a bar completes when it reaches its
// total, and Close settles the others.
func (b *bars) Finish(string) {}

// Close completes the bars where they stand if the run succeeded (a
// planned row count may be an estimate), or stops them there if it failed.
func (b *bars) Close(err error) {
	b.mu.Lock()
	for _, bar := range b.bars {
		switch {
		case bar.Completed():
		case err == nil || errors.Is(err, mapreduce.ErrFailureRate):
			bar.SetTotal(-1, true)
		default:
			bar.Abort(false)
		}
	}
	b.mu.Unlock()
	b.p.Wait()
}

// logLines reports progress as log lines: one when a phase starts, one
// every logEvery while it runs, one when it finishes.
type logLines struct {
	log    *slog.Logger
	every  time.Duration
	mu     sync.Mutex
	phases map[string]*phaseLog
}

// phaseLog is the state of one phase. It logs no rate: the engine reports
// resumed work through Add too, and the summary line has the true rate.
type phaseLog struct {
	total int64
	began time.Time
	done  atomic.Int64
	last  atomic.Int64 // UnixNano of the last line
}

func (l *logLines) Start(phase string, total, done int64) {
	p := &phaseLog{total: total, began: time.Now()}
	p.done.Store(done)
	p.last.Store(p.began.UnixNano())
	l.mu.Lock()
	l.phases[phase] = p
	l.mu.Unlock()
	l.log.Info("phase started", "phase", phase, "total", total, "done", done, "unit", units[phase])
}

func (l *logLines) phase(phase string) *phaseLog {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.phases[phase]
}

func (l *logLines) Add(phase string, n int64) {
	p := l.phase(phase)
	if p == nil {
		return
	}
	done := p.done.Add(n)
	now := time.Now().UnixNano()
	last := p.last.Load()
	if now-last < int64(l.every) || !p.last.CompareAndSwap(last, now) {
		return
	}
	l.log.Info("progress", "phase", phase, "done", done, "total", p.total,
		"percent", fmt.Sprintf("%.1f", percent(done, p.total)), "elapsed", time.Since(p.began).Round(time.Second))
}

func (l *logLines) Finish(phase string) {
	p := l.phase(phase)
	if p == nil {
		return
	}
	done := p.done.Load()
	l.log.Info("phase finished", "phase", phase, "done", done, "total", p.total,
		"elapsed", time.Since(p.began).Round(time.Millisecond))
}

func (l *logLines) Close(error) {}

func percent(done, total int64) float64 {
	if total <= 0 {
		return 100
	}
	return 100 * float64(done) / float64(total)
}

// printPlan prints a run's plan: its identity, its size, its ends and, up
// to limit of them (all with limit < 0), its partitions with their
// estimated rows.
func printPlan(w io.Writer, p *mapreduce.Plan, resumed bool, limit int) {
	state := "new"
	if resumed {
		state = "resumed, planned " + p.Created.Format(time.RFC3339)
	}
	fmt.Fprintf(w, "run     %s (%s)\n", p.RunID, state)
	fmt.Fprintf(w, "plan    %d rows, %d partitions, %d buckets\n", p.Rows, len(p.Partitions), p.Buckets)
	fmt.Fprintf(w, "source  %s (table %s, cursor %s)\n", pg.Redact(p.Source), p.Input.Table, p.Input.Cursor)
	fmt.Fprintf(w, "sink    %s (table %s)\n", pg.Redact(p.Sink), p.OutputTable)
	if limit == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "partition\tfrom %s\tbelow\test. rows\t\n", p.Input.Cursor)
	for i, part := range p.Partitions {
		if limit > 0 && i == limit {
			fmt.Fprintf(tw, "…\t%d more; see mr run --explain\t\t\t\n", len(p.Partitions)-limit)
			break
		}
		fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t\n", i, part.Lo, part.Hi, part.Rows)
	}
	tw.Flush()
}
