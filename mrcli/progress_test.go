package mrcli

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

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
	p, log := newProgress(&bytes.Buffer{})
	if _, ok := p.(*logLines); !ok {
		t.Errorf("progress to a buffer is %T, want log lines", p)
	}
	if !log.Enabled(t.Context(), slog.LevelInfo) {
		t.Error("info lines are not logged")
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
