package jobs

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Pipeline is a named list of registered jobs, its stages, run in order:
// each stage's input table is the output table of the stage before it,
// so the data flows from the first stage's input to the last stage's
// output. Each stage is its own run of its job, with its own plan,
// checkpoints and dead letters: a crash in a stage resumes that stage,
// and the stages before it, complete, read no row.
//
// Like a job's Name, a pipeline's Name is a stable identity that users
// type (mr run NAME); it shares the jobs' name space, so that mr run
// knows which one a name means.
type Pipeline struct {
	Name        string
	Description string
	// Stages are the names of the stages' jobs, in order; at least two.
	Stages []string
}

var pipelineName = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// RegisterPipeline adds a pipeline to the registry. Its stages must be
// registered first. It panics if the pipeline is invalid or its name is
// taken, as Register does: both are programming errors, found at
// start-up.
func RegisterPipeline(p Pipeline) {
	if err := TryRegisterPipeline(p); err != nil {
		panic(err)
	}
}

// TryRegisterPipeline is RegisterPipeline returning an error instead of
// panicking, for pipelines added at run time (as by a plugin, after the
// jobs it registered).
func TryRegisterPipeline(p Pipeline) error {
	p.Stages = slices.Clone(p.Stages)
	mu.Lock()
	defer mu.Unlock()
	if err := validatePipelineLocked(p); err != nil {
		return fmt.Errorf("jobs: pipeline %q: %w", p.Name, err)
	}
	mu.pipelines[p.Name] = p
	return nil
}

// validatePipelineLocked reports every way p is invalid: its name, a
// stage that is not registered, and an input table that is not the
// output table of the stage before.
func validatePipelineLocked(p Pipeline) error {
	var errs []error
	if !pipelineName.MatchString(p.Name) {
		errs = append(errs, fmt.Errorf("name %q must be lower case letters, digits and underscores, starting with a letter", p.Name))
	}
	if _, ok := mu.pipelines[p.Name]; ok {
		errs = append(errs, errors.New("is registered twice"))
	}
	if _, ok := mu.jobs[p.Name]; ok {
		errs = append(errs, errors.New("has the name of a registered job; mr run would not know which to run"))
	}
	if len(p.Stages) < 2 {
		errs = append(errs, fmt.Errorf("has %d stages, want at least 2: a pipeline of one stage is its job", len(p.Stages)))
	}
	prevOutput := ""
	for i, name := range p.Stages {
		e, ok := mu.jobs[name]
		if !ok {
			errs = append(errs, fmt.Errorf("stage %d: unknown job %q; register the stages' jobs before the pipeline", i+1, name))
			prevOutput = ""
			continue
		}
		spec := e.def.Spec()
		if i > 0 && prevOutput != "" && spec.Input.Table != prevOutput {
			errs = append(errs, fmt.Errorf("stage %d: job %q reads table %q, not %q, the output of stage %d",
				i+1, name, spec.Input.Table, prevOutput, i))
		}
		prevOutput = spec.Output.Name
	}
	return errors.Join(errs...)
}

// LookupPipeline returns the pipeline registered under name, and whether
// there is one.
func LookupPipeline(name string) (Pipeline, bool) {
	mu.RLock()
	defer mu.RUnlock()
	p, ok := mu.pipelines[name]
	p.Stages = slices.Clone(p.Stages)
	return p, ok
}

// Pipelines returns the registered pipelines, sorted by name.
func Pipelines() []Pipeline {
	mu.RLock()
	defer mu.RUnlock()
	ps := make([]Pipeline, 0, len(mu.pipelines))
	for _, p := range mu.pipelines {
		p.Stages = slices.Clone(p.Stages)
		ps = append(ps, p)
	}
	slices.SortFunc(ps, func(a, b Pipeline) int { return strings.Compare(a.Name, b.Name) })
	return ps
}
