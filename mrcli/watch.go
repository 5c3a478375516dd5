package mrcli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/mattn/go-isatty"

	"github.com/mrengine/mr/mapreduce"
)

// mr status RUN --watch reads the run state that another process is
// committing, the way mr status does, once per --interval, until the run
// is done. Everything it shows is committed state: a map task's rows count
// once its checkpoint has them, a bucket once its done marker is written.
// Rates come from the difference between refreshes (see rateWindow).

// rateWindow is how far back the rate of a refresh looks: the oldest
// refresh within it is compared with the newest. Commits land in steps
// (a checkpoint per --checkpoint-interval per map task), so the change
// between two refreshes a second apart jumps between zero and a burst; ten
// seconds of them steady the rate and the ETA drawn from it, and still
// follow a run that slows down within the time it takes to notice.
const rateWindow = 10 * time.Second

// partitionsPerLine is how many partitions a line of the watch shows:
// eight cells of 10 columns fit an 80-column terminal.
const partitionsPerLine = 8

// sample is what one refresh counted.
type sample struct {
	at            time.Time
	rows, buckets int64
}

// watchView is one refresh of a watched run, as text or JSON shows it.
type watchView struct {
	ri    *mapreduce.RunInfo
	at    time.Time
	phase string // mapreduce.PhaseMap or PhaseReduce, or PhaseDone
	// rows read and failed, and bytes spilled, as the checkpoints commit
	// them.
	rows, failed, spilled int64
	// rate is rows per second in the map phase and buckets per second in
	// the reduce phase, over the refreshes of the last rateWindow; known
	// once two refreshes are that far apart or the count moved.
	rate  float64
	known bool
}

// watcher keeps the refreshes of the last rateWindow.
type watcher struct {
	samples []sample
}

// view reads ri as of at and records it.
func (w *watcher) view(ri *mapreduce.RunInfo, at time.Time) watchView {
	v := watchView{ri: ri, at: at, phase: mapreduce.PhaseMap}
	switch ri.State() {
	case mapreduce.StateReducing:
		v.phase = mapreduce.PhaseReduce
	case mapreduce.StateDone:
		v.phase = mapreduce.PhaseDone
	}
	v.rows, v.failed = ri.Rows()
	for _, cp := range ri.Checkpoints {
		if cp != nil {
			v.spilled += cp.Spilled
		}
	}
	now := sample{at: at, rows: v.rows, buckets: int64(len(ri.BucketsDone))}
	cut := slices.IndexFunc(w.samples, func(s sample) bool { return at.Sub(s.at) <= rateWindow })
	if cut < 0 {
		cut = len(w.samples)
	}
	w.samples = append(w.samples[cut:], now)
	first := w.samples[0]
	if secs := at.Sub(first.at).Seconds(); secs > 0 {
		done := now.rows - first.rows
		if v.phase != mapreduce.PhaseMap {
			done = now.buckets - first.buckets
		}
		v.rate, v.known = float64(done)/secs, true
	}
	return v
}

// left is what the phase has left to do, in its unit, and its total.
func (v watchView) left() (left, total int64) {
	p := v.ri.Plan
	if v.phase == mapreduce.PhaseMap {
		// The plan's row count may be an estimate: never less than read.
		total = max(p.Rows, v.rows)
		return total - v.rows, total
	}
	return int64(p.Buckets - len(v.ri.BucketsDone)), int64(p.Buckets)
}

// eta is the time the phase needs at the current rate, or -1 if unknown.
func (v watchView) eta() time.Duration {
	left, _ := v.left()
	switch {
	case left == 0:
		return 0
	case !v.known:
		return -1
	}
	return remaining(left, v.rate)
}

func (v watchView) rateText() string {
	unit := units[mapreduce.PhaseReduce] + "/s"
	if v.phase == mapreduce.PhaseMap {
		unit = units[mapreduce.PhaseMap] + "/s"
	}
	if !v.known {
		return "- " + unit
	}
	return fmt.Sprintf("%.0f %s", v.rate, unit)
}

func (v watchView) etaText() string {
	switch eta := v.eta(); {
	case v.phase == mapreduce.PhaseDone:
		return "done"
	case eta < 0:
		return "ETA -"
	default:
		return "ETA " + eta.String()
	}
}

// partitionCell is the state of partition part in a few characters:
// done, the share of its cursor range committed, - before its first
// commit, or damaged (the next run re-maps it).
func partitionCell(ri *mapreduce.RunInfo, part int) string {
	if slices.ContainsFunc(ri.Damaged, func(d mapreduce.Damage) bool { return d.Partition == part }) {
		return "damaged"
	}
	cp, r := ri.Checkpoints[part], ri.Plan.Partitions[part].Range
	switch {
	case cp == nil:
		return "-"
	case cp.Done:
		return "done"
	case r.Hi <= r.Lo:
		return "0%"
	}
	// A partition that is not done has not reached its end: at most 99%.
	return fmt.Sprintf("%d%%", min(99, 100*(cp.Next-r.Lo)/(r.Hi-r.Lo)))
}

// writeText writes v as a block of lines.
func (v watchView) writeText(w io.Writer) {
	ri, p := v.ri, v.ri.Plan
	fmt.Fprintf(w, "run      %s (%s) at %s\n", p.RunID, ri.State(), v.at.UTC().Format(time.RFC3339))
	mapped := fmt.Sprintf("%d/%d rows", v.rows, p.Rows)
	if v.phase == mapreduce.PhaseMap {
		_, total := v.left()
		mapped += fmt.Sprintf(" (%.1f%%), %s, %s", percent(v.rows, total), v.rateText(), v.etaText())
	}
	fmt.Fprintf(w, "map      %s, %d failed, %s spilled\n", mapped, v.failed, humanize.IBytes(uint64(v.spilled)))
	fmt.Fprintf(w, "         %d/%d partitions done\n", ri.PartitionsDone(), len(p.Partitions))
	for i := 0; i < len(p.Partitions); i += partitionsPerLine {
		var cells []string
		for part := i; part < min(i+partitionsPerLine, len(p.Partitions)); part++ {
			cells = append(cells, fmt.Sprintf("%3d %-5s", part, partitionCell(ri, part)))
		}
		fmt.Fprintf(w, "        %s\n", strings.TrimRight(strings.Join(cells, " "), " "))
	}
	reduced := fmt.Sprintf("%d/%d buckets done", len(ri.BucketsDone), p.Buckets)
	if v.phase == mapreduce.PhaseReduce {
		reduced += fmt.Sprintf(", %s, %s", v.rateText(), v.etaText())
	}
	fmt.Fprintf(w, "reduce   %s\n", reduced)
}

// watchJSON is a line of mr status RUN --watch --json: mr status RUN
// --json's object, compact, with what the watch adds (see statusCommand).
type watchJSON struct {
	runStatusJSON
	Time           time.Time `json:"time"`
	Phase          string    `json:"phase"`
	BytesSpilled   int64     `json:"bytes_spilled"`
	Rate           *float64  `json:"rate"`
	RateUnit       string    `json:"rate_unit"`
	ETASeconds     *float64  `json:"eta_seconds"`
	PartitionCells []string  `json:"partition_cells"`
}

func (v watchView) writeJSON(w io.Writer, cfg mapreduce.Config) error {
	doc, err := newRunStatusJSON(cfg, v.ri)
	if err != nil {
		return err
	}
	line := watchJSON{runStatusJSON: doc, Time: v.at.UTC(), Phase: v.phase, BytesSpilled: v.spilled, RateUnit: "rows/s"}
	if v.phase != mapreduce.PhaseMap {
		line.RateUnit = "buckets/s"
	}
	if v.known {
		line.Rate = &v.rate
	}
	if eta := v.eta(); eta >= 0 {
		secs := eta.Seconds()
		line.ETASeconds = &secs
	}
	for part := range v.ri.Plan.Partitions {
		line.PartitionCells = append(line.PartitionCells, partitionCell(v.ri, part))
	}
	b, err := json.Marshal(line)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// clearScreen moves the cursor home and clears the screen (ANSI), so that
// each refresh draws over the last on a terminal.
const clearScreen = "\x1b[H\x1b[2J"

// watchStatus shows run in cfg's work directory every interval until it
// is done, on out: a block of text per refresh (drawn in place on a
// terminal), or with asJSON a JSON line. A done run is shown once. ctx
// ending (Ctrl-C) stops the watch with an error that says how far the run
// got, so that a script waiting for the run can tell.
func watchStatus(ctx context.Context, out io.Writer, cfg mapreduce.Config, ri *mapreduce.RunInfo, interval time.Duration, asJSON bool) error {
	redraw := false
	if f, ok := out.(*os.File); ok && !asJSON {
		redraw = isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd())
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var w watcher
	for first := true; ; first = false {
		v := w.view(ri, time.Now())
		switch {
		case asJSON:
			if err := v.writeJSON(out, cfg); err != nil {
				return err
			}
		case redraw:
			fmt.Fprint(out, clearScreen)
			v.writeText(out)
		default:
			if !first {
				fmt.Fprintln(out)
			}
			v.writeText(out)
		}
		if ri.State() == mapreduce.StateDone {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("stopped watching run %s, which is %s", ri.Plan.RunID, ri.State())
		case <-tick.C:
		}
		next, err := mapreduce.Inspect(ctx, cfg, ri.Plan.RunID)
		if ctx.Err() != nil {
			return fmt.Errorf("stopped watching run %s, which is %s", ri.Plan.RunID, ri.State())
		}
		if err != nil {
			return err
		}
		ri = next
	}
}
