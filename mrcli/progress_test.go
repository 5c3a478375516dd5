package mrcli

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/mrengine/mr/internal/eventgen"
	"github.com/mrengine/mr/mapreduce"
)

func TestLogLines(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	l := &logLines{log: slog.New(slog.NewTextHandler(&buf, nil)), every: 0, phases: map[string]*phaseLog{}}
	l.Start(mapreduce.PhaseMap, 100, 10)
	l.Add(mapreduce.PhaseMap, 40)
	l.Add("unknown", 1) // ignored
	l.Finish(mapreduce.PhaseMap)
	l.Close(nil)
	got := buf.String()
	for _, want := range []string{
		`msg="phase started" phase=map total=100 done=10 unit=rows`,
		`msg=progress phase=map done=50 total=100 percent=50.0`,
		`msg="phase finished" phase=map done=50 total=100`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("log lacks %q:\n%s", want, got)
		}
	}
}

func TestNewProgress_NotATerminal(t *testing.T) {
	t.Parallel()
	for _, format := range []string{logText, logJSON} {
		var buf bytes.Buffer
		p, log := newProgress(&buf, format)
		if _, ok := p.(*logLines); !ok {
			t.Errorf("%s: progress to a buffer is %T, want log lines", format, p)
		}
		if !log.Enabled(t.Context(), slog.LevelInfo) {
			t.Errorf("%s: info lines are not logged", format)
		}
		log.Info("hello")
		if isJSON := json.Valid(buf.Bytes()); isJSON != (format == logJSON) {
			t.Errorf("%s: logged %q", format, buf.String())
		}
	}
}

// TestUseBars checks when a run draws bars and when it logs lines instead.
func TestUseBars(t *testing.T) {
	t.Parallel()
	noSize := errors.New("inappropriate ioctl for device")
	for _, tt := range []struct {
		name          string
		tty           bool
		term          string
		width, height int
		err           error
		want          bool
	}{
		{"Terminal", true, "xterm-256color", 120, 40, nil, true},
		{"NoTERM", true, "", 80, 24, nil, true},
		{"Pipe", false, "xterm", 0, 0, nil, false},
		{"Dumb", true, "dumb", 80, 24, nil, false},
		{"ZeroSize", true, "xterm", 0, 0, nil, false},
		{"ZeroHeight", true, "xterm", 80, 0, nil, false},
		{"IoctlFails", true, "xterm", 0, 0, noSize, false},
	} {
		if got := useBars(tt.tty, tt.term, tt.width, tt.height, tt.err); got != tt.want {
			t.Errorf("%s: useBars = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestPace checks a bar's rate and ETA: from this attempt's work only.
func TestPace(t *testing.T) {
	t.Parallel()
	p := newPace(mapreduce.PhaseMap, 400, time.Now().Add(-2*time.Second))
	s := decor.Statistics{Total: 1000, Current: 600} // 200 rows in 2s, 400 resumed
	if got := p.rate(s); got != " 100 rows/s" {
		t.Errorf("rate = %q, want 100 rows/s", got)
	}
	if got := p.eta(s); got != " ETA 4s" {
		t.Errorf("eta = %q, want ETA 4s", got)
	}
	if got := p.eta(decor.Statistics{Total: 1000, Current: 400}); got != " ETA -" {
		t.Errorf("eta before any work = %q, want ETA -", got)
	}
}

// TestBars_Render draws the bars of a run that is part-way and checks
// their decorators: counts, rate, elapsed, ETA and failed rows.
func TestBars_Render(t *testing.T) {
	t.Parallel()
	var buf syncBuffer
	b := newBars(&buf, mpb.WithAutoRefresh(), mpb.WithWidth(200))
	b.Stats(func() mapreduce.Stats { return mapreduce.Stats{Failed: 7} })
	b.Start(mapreduce.PhaseMap, 1000, 0)
	b.Add(mapreduce.PhaseMap, 1000)
	b.Close(nil)
	out := buf.String()
	for _, want := range []string{"map", "1000 / 1000 rows", "100 %", "rows/s", "done", "7 failed"} {
		if !strings.Contains(out, want) {
			t.Errorf("the bars lack %q:\n%s", want, out)
		}
	}
}

func TestBars(t *testing.T) {
	t.Parallel()
	for _, err := range []error{nil, mapreduce.ErrFailureRate, errors.New("boom")} {
		var buf bytes.Buffer
		b := newBars(&buf)
		b.Start(mapreduce.PhaseMap, 1000, 100)
		b.Add(mapreduce.PhaseMap, 500) // short of the total
		b.Finish(mapreduce.PhaseMap)
		b.Start(mapreduce.PhaseReduce, 4, 0)
		b.Add(mapreduce.PhaseReduce, 4)
		b.Finish(mapreduce.PhaseReduce)
		b.Close(err) // returns: every bar is settled
		if !b.bar(mapreduce.PhaseReduce).Completed() {
			t.Errorf("error %v: a bar at its total is not complete", err)
		}
		if got, want := b.bar(mapreduce.PhaseMap).Completed(), err == nil || errors.Is(err, mapreduce.ErrFailureRate); got != want {
			t.Errorf("error %v: a bar short of its total completed = %v, want %v", err, got, want)
		}
	}
}

// TestRun_LogFormatJSON runs a job, and one that fails, with --log-format
// json: every line on stderr is a JSON object, the final error included.
func TestRun_LogFormatJSON(t *testing.T) {
	t.Parallel()
	source := seedEvents(t, eventgen.Config{Rows: 500, Seed: 4, PoisonRate: 0.2})
	for _, tt := range []struct {
		name string
		args []string
		code int
	}{
		{"Done", []string{"--max-failure-rate", "0.5"}, ExitOK},
		{"Alert", nil, ExitAlert},
	} {
		r := runMR(t, append([]string{"run", "daily_rollup", "--source", source, "--workdir", t.TempDir(), "--log-format", "json"}, tt.args...)...)
		if r.code != tt.code {
			t.Fatalf("%s: exit %d, want %d; stderr:\n%s", tt.name, r.code, tt.code, r.stderr)
		}
		var msgs []string
		for line := range strings.Lines(r.stderr) {
			var rec struct{ Time, Level, Msg string }
			if err := json.Unmarshal([]byte(line), &rec); err != nil || rec.Time == "" || rec.Level == "" {
				t.Errorf("%s: a line that is not a JSON log record (%v): %q", tt.name, err, line)
			}
			msgs = append(msgs, rec.Msg)
		}
		if !slices.Contains(msgs, "phase finished") {
			t.Errorf("%s: no phase logged in %q", tt.name, msgs)
		}
		if tt.code == ExitAlert && !strings.HasPrefix(msgs[len(msgs)-1], "ALERT: ") {
			t.Errorf("%s: the last record is %q, want the alert", tt.name, msgs[len(msgs)-1])
		}
	}
	r := runMR(t, "run", "daily_rollup", "--source", source, "--log-format", "yaml")
	if r.code != ExitUsage || !strings.Contains(r.stderr, `invalid --log-format "yaml"`) {
		t.Errorf("--log-format yaml: exit %d, stderr:\n%s", r.code, r.stderr)
	}
}
