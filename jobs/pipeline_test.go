package jobs

import (
	"slices"
	"strings"
	"testing"
)

// stageJobs registers two jobs whose tables chain (t → counts → totals)
// and returns their names.
func stageJobs(n testNames, base string) (first, second string) {
	a, b := countJob(n.job(base+"_a")), countJob(n.job(base+"_b"))
	b.Input.Table, b.Output.Table = "counts", "totals"
	Register(a)
	Register(b)
	return a.Name, b.Name
}

func TestRegisterPipeline(t *testing.T) {
	t.Parallel()
	n := newTestNames()
	first, second := stageJobs(n, "pipe_ok")
	p := Pipeline{Name: n.job("pipe_ok"), Description: "two stages", Stages: []string{first, second}}
	RegisterPipeline(p)
	got, ok := LookupPipeline(p.Name)
	if !ok || got.Name != p.Name || !slices.Equal(got.Stages, p.Stages) {
		t.Fatalf("LookupPipeline(%q) = %+v, %t; want %+v", p.Name, got, ok, p)
	}
	if !slices.ContainsFunc(Pipelines(), func(q Pipeline) bool { return q.Name == p.Name }) {
		t.Errorf("Pipelines() does not list %q", p.Name)
	}
	// The name space is shared: a job may not take a pipeline's name.
	if err := TryRegister(countJob(p.Name)); err == nil || !strings.Contains(err.Error(), "name of a registered pipeline") {
		t.Errorf("TryRegister of a job named like a pipeline = %v, want an error saying so", err)
	}
	if _, ok := LookupPipeline(n.job("pipe_none")); ok {
		t.Error("LookupPipeline found a pipeline that was never registered")
	}
}

func TestRegisterPipeline_Builtin(t *testing.T) {
	t.Parallel()
	p, ok := LookupPipeline("payload_channels")
	if !ok || !slices.Equal(p.Stages, []string{"event_payloads", "channel_totals"}) {
		t.Fatalf("payload_channels = %+v, %t; want stages event_payloads, channel_totals", p, ok)
	}
}

func TestTryRegisterPipeline_Invalid(t *testing.T) {
	t.Parallel()
	n := newTestNames()
	first, second := stageJobs(n, "pipe_bad")
	RegisterPipeline(Pipeline{Name: n.job("pipe_taken"), Stages: []string{first, second}})
	for _, tt := range []struct {
		name string
		p    Pipeline
		want string
	}{
		{"UnknownStage", Pipeline{Name: n.job("pipe_unknown"), Stages: []string{first, n.job("nope")}},
			`stage 2: unknown job "nope"; register the stages' jobs before the pipeline`},
		{"MismatchedTables", Pipeline{Name: n.job("pipe_mismatch"), Stages: []string{second, first}},
			`stage 2: job "pipe_bad_a" reads table "t", not "totals", the output of stage 1`},
		{"DuplicatePipeline", Pipeline{Name: n.job("pipe_taken"), Stages: []string{first, second}},
			"is registered twice"},
		{"JobName", Pipeline{Name: first, Stages: []string{first, second}},
			"has the name of a registered job"},
		{"BadName", Pipeline{Name: "Pipe-1", Stages: []string{first, second}},
			`name "Pipe-1" must be lower case letters`},
		{"OneStage", Pipeline{Name: n.job("pipe_one"), Stages: []string{first}},
			"has 1 stages, want at least 2"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := TryRegisterPipeline(tt.p)
			if err == nil || !strings.Contains(n.base(err.Error()), tt.want) {
				t.Fatalf("TryRegisterPipeline = %v, want an error containing %q", err, tt.want)
			}
			if tt.name != "DuplicatePipeline" {
				if _, ok := LookupPipeline(tt.p.Name); ok {
					t.Errorf("the invalid pipeline %q was registered", tt.p.Name)
				}
			}
		})
	}
	t.Run("Panics", func(t *testing.T) {
		t.Parallel()
		defer func() {
			if recover() == nil {
				t.Error("RegisterPipeline of an invalid pipeline did not panic")
			}
		}()
		RegisterPipeline(Pipeline{Name: n.job("pipe_panic"), Stages: []string{second, first}})
	})
}
