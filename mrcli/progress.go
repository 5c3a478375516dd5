package mrcli

import (
	"cmp"
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
	"github.com/urfave/cli/v2"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"

	"github.com/mrengine/mr/internal/pg"
	"github.com/mrengine/mr/mapreduce"
)

// progress is a mapreduce.Progress that must be closed after the run,
// with the run's error.
type progress interface {
	mapreduce.Progress
	// Stats gives the runner's counters, for what Progress calls do not
	// carry (failed rows), once the runner exists.
	Stats(stats func() mapreduce.Stats)
	Close(err error)
}

// logEvery is how often log lines report a phase's progress: often enough
// to see a run move, rarely enough to keep a long run's log short.
const logEvery = 5 * time.Second

// Log formats (--log-format).
const (
	logText = "text"
	logJSON = "json"
)

// logFormatFlag is --log-format, of the commands that run a job.
func logFormatFlag() cli.Flag {
	return &cli.StringFlag{Name: "log-format", Value: logText, Usage: "write log lines as `FORMAT`: text (key=value) or json (one object per line, and no progress bars)"}
}

// logFormatKey keys the log format in the app's Metadata, for Run, which
// writes the final error line in it.
const logFormatKey = "log-format"

// setLogFormat returns c's --log-format, checked, and records it for Run;
// a command without the flag logs text.
func setLogFormat(c *cli.Context) (string, error) {
	switch f := cmp.Or(c.String("log-format"), logText); f {
	case logText, logJSON:
		if c.App.Metadata != nil {
			c.App.Metadata[logFormatKey] = f
		}
		return f, nil
	default:
		return "", usagef(helpHint(c), "invalid --log-format %q: want text or json", f)
	}
}

// newLogger returns a logger writing format (logText or logJSON) to w at
// level and above.
func newLogger(w io.Writer, format string, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == logJSON {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// newProgress returns how a run reports to errOut, and the logger for the
// engine's log lines, in format. On a terminal that bars fit (see
// barsFit), with text logs: a progress bar per phase, and only warnings
// logged (the bars say the rest). Elsewhere (a pipe, a file, CI, a
// terminal that reports no size) and with JSON logs, which are for
// programs: log lines, a few per phase.
func newProgress(errOut io.Writer, format string) (progress, *slog.Logger) {
	if format != logJSON && barsFit(errOut) {
		return newBars(errOut), newLogger(errOut, format, slog.LevelWarn)
	}
	log := newLogger(errOut, format, slog.LevelInfo)
	return &logLines{log: log, every: logEvery, phases: map[string]*phaseLog{}}, log
}

// barsFit reports whether w is a terminal that progress bars can redraw:
// see useBars.
func barsFit(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	tty := isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd())
	width, height, err := 0, 0, error(nil)
	if tty {
		width, height, err = term.GetSize(int(f.Fd()))
	}
	return useBars(tty, os.Getenv("TERM"), width, height, err)
}

// useBars decides between bars and log lines. Bars redraw their lines in
// place with ANSI cursor moves sized to the terminal: they need a
// terminal that understands them (not TERM=dumb, as Emacs shells and some
// CI runners set) and reports its size. A pseudo-terminal that reports 0
// by 0 (a container started without a window size, script(1) under some
// CI) or whose size cannot be read would get bars drawn at a guessed width,
// wrapped and never erased, so it gets log lines.
func useBars(tty bool, termEnv string, width, height int, sizeErr error) bool {
	return tty && termEnv != "dumb" && sizeErr == nil && width > 0 && height > 0
}

// units names what each phase counts.
var units = map[string]string{mapreduce.PhaseMap: "rows", mapreduce.PhaseReduce: "buckets"}

// bars shows one mpb progress bar per phase: done / total, percentage,
// this attempt's rate, elapsed time, ETA, and for the map phase the rows
// failed so far.
type bars struct {
	p     *mpb.Progress
	stats atomic.Pointer[func() mapreduce.Stats]
	mu    sync.Mutex
	bars  map[string]*mpb.Bar
}

// newBars returns bars drawn on w, with extra options (tests draw on a
// buffer, which mpb leaves blank unless told to refresh it).
func newBars(w io.Writer, opts ...mpb.ContainerOption) *bars {
	opts = append([]mpb.ContainerOption{mpb.WithOutput(w), mpb.WithWidth(40)}, opts...)
	return &bars{p: mpb.New(opts...), bars: map[string]*mpb.Bar{}}
}

func (b *bars) Stats(stats func() mapreduce.Stats) { b.stats.Store(&stats) }

// failed is the map bar's failed rows decorator.
func (b *bars) failed(decor.Statistics) string {
	stats := b.stats.Load()
	if stats == nil {
		return ""
	}
	return fmt.Sprintf(" %d failed", (*stats)().Failed)
}

func (b *bars) Start(phase string, total, done int64) {
	pace := newPace(phase, done, time.Now())
	appended := []decor.Decorator{
		decor.Percentage(decor.WC{W: 5}),
		decor.Any(pace.rate, decor.WC{W: 15}),
		decor.Elapsed(decor.ET_STYLE_GO, decor.WC{W: 8}),
		decor.OnComplete(decor.Any(pace.eta, decor.WC{W: 10}), "      done"),
	}
	if phase == mapreduce.PhaseMap {
		appended = append(appended, decor.Any(b.failed, decor.WC{W: 13}))
	}
	bar := b.p.New(total, mpb.BarStyle(),
		mpb.PrependDecorators(
			decor.Name(fmt.Sprintf("%-6s", phase)),
			decor.CountersNoUnit("%d / %d "+units[phase], decor.WCSyncWidth),
		),
		mpb.AppendDecorators(appended...),
	)
	bar.SetCurrent(done)
	b.mu.Lock()
	b.bars[phase] = bar
	b.mu.Unlock()
}

// pace computes a bar's rate and ETA from the work of this attempt only:
// what earlier attempts did (the bar's start) took no time now, and
// counting it would promise a resumed run an end it will not keep.
type pace struct {
	unit  string
	done  int64 // at the start
	start time.Time
}

func newPace(phase string, done int64, start time.Time) *pace {
	return &pace{unit: units[phase], done: done, start: start}
}

// perSecond is the rate at current, or 0 before any work.
func (p *pace) perSecond(current int64) float64 {
	secs := time.Since(p.start).Seconds()
	if secs <= 0 || current <= p.done {
		return 0
	}
	return float64(current-p.done) / secs
}

func (p *pace) rate(s decor.Statistics) string {
	return fmt.Sprintf(" %.0f %s/s", p.perSecond(s.Current), p.unit)
}

func (p *pace) eta(s decor.Statistics) string {
	if eta := remaining(s.Total-s.Current, p.perSecond(s.Current)); eta > 0 {
		return " ETA " + eta.String()
	}
	return " ETA -"
}

// remaining is how long left units take at perSecond, to the second, or
// -1 when there is no rate to tell.
func remaining(left int64, perSecond float64) time.Duration {
	if perSecond <= 0 {
		return -1
	}
	return time.Duration(float64(left) / perSecond * float64(time.Second)).Round(time.Second)
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

// Stats is a no-op: log lines count what Progress tells them, and the
// summary line has the failed rows.
func (l *logLines) Stats(func() mapreduce.Stats) {}

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
	if p.MapOnly {
		fmt.Fprintf(w, "plan    %d rows, %d partitions, map-only (each chunk upserted as it is read)\n", p.Rows, len(p.Partitions))
	} else {
		fmt.Fprintf(w, "plan    %d rows, %d partitions, %d buckets\n", p.Rows, len(p.Partitions), p.Buckets)
	}
	fmt.Fprintf(w, "source  %s (table %s, cursor %s)\n", pg.Redact(p.Source), p.Input.Table, p.Input.Cursor)
	fmt.Fprintf(w, "sink    %s (table %s)\n", pg.Redact(p.Sink), p.OutputTable)
	switch {
	case p.Merges():
		fmt.Fprintf(w, "batch   %d: %s %s through %d (the high-water mark), merged into the table\n", p.Batch, p.Input.Cursor, p.Span, *p.Mark)
	case p.Mark != nil:
		fmt.Fprintf(w, "mark    %s through %d (the high-water mark); --incremental reads past it\n", p.Input.Cursor, *p.Mark)
	}
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
