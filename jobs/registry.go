package jobs

import (
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/mrengine/mr/mapreduce"
)

// mu guards the registry: the jobs and the pipelines by name, and the
// plugins LoadPlugin loaded or is loading. Its maps are made before any
// init runs.
var mu = struct {
	sync.RWMutex
	jobs      map[string]entry
	pipelines map[string]Pipeline
	load      *pluginLoad            // the plugin whose init is running, or nil
	plugins   map[string]*pluginLoad // by real path, with their outcome
}{
	jobs:      map[string]entry{},
	pipelines: map[string]Pipeline{},
	plugins:   map[string]*pluginLoad{},
}

// entry is one registered job.
type entry struct {
	def    mapreduce.Definition
	plugin *pluginLoad // the plugin that registered it; nil if built in
}

// Register adds a job to the registry. It panics if the job is invalid or
// its name is taken: both are programming errors, found at start-up. In
// the init of a plugin that LoadPlugin is loading it does not panic:
// LoadPlugin returns the error. Key and value types are checked against
// Map's emit at compile time.
func Register[K comparable, V any](j mapreduce.Job[K, V]) {
	if err := add(j.Name, &j, j.Validate(), true); err != nil {
		panic(err)
	}
}

// TryRegister is Register returning an error instead of panicking, for
// jobs added at run time.
func TryRegister[K comparable, V any](j mapreduce.Job[K, V]) error {
	return add(j.Name, &j, j.Validate(), false)
}

// add registers def under name unless invalid is set or the name is taken.
// If the caller is the init of the plugin being loaded, the job is the
// plugin's, and with collect (Register) an error goes to LoadPlugin
// instead of the caller.
func add(name string, def mapreduce.Definition, invalid error, collect bool) error {
	mu.Lock()
	defer mu.Unlock()
	load := mu.load // a job registered while a plugin loads is the plugin's
	err := invalid
	if err == nil {
		err = takenLocked(name, load)
	}
	switch {
	case err == nil:
		mu.jobs[name] = entry{def: def, plugin: load}
		if load != nil {
			load.names = append(load.names, name)
		}
		return nil
	case collect && load != nil:
		load.errs = append(load.errs, err)
		return nil
	default:
		return fmt.Errorf("jobs: %w", err)
	}
}

// takenLocked returns an error saying who holds name, if it is taken, for a
// job that load is registering (nil: not a plugin).
func takenLocked(name string, load *pluginLoad) error {
	if _, ok := mu.pipelines[name]; ok {
		return fmt.Errorf("job %q has the name of a registered pipeline; mr run would not know which to run", name)
	}
	prev, ok := mu.jobs[name]
	switch {
	case !ok:
		return nil
	case load == nil && prev.plugin == nil:
		return fmt.Errorf("job %q is registered twice", name)
	case load == nil:
		return fmt.Errorf("job %q is already registered (by plugin %s)", name, prev.plugin.path)
	case prev.plugin == load:
		return fmt.Errorf("job %q is registered twice by this plugin", name)
	case prev.plugin == nil:
		return fmt.Errorf("job %q is already registered (built into this binary); rename the plugin's job", name)
	default:
		return fmt.Errorf("job %q is already registered (by plugin %s); rename the plugin's job", name, prev.plugin.path)
	}
}

// Lookup returns the job registered under name.
func Lookup(name string) (mapreduce.Definition, error) {
	mu.RLock()
	defer mu.RUnlock()
	if e, ok := mu.jobs[name]; ok {
		return e.def, nil
	}
	return nil, fmt.Errorf("unknown job %q; registered jobs: %s", name, strings.Join(namesLocked(), ", "))
}

// List returns the specs of all registered jobs, sorted by name.
func List() []mapreduce.Spec {
	mu.RLock()
	defer mu.RUnlock()
	specs := make([]mapreduce.Spec, 0, len(mu.jobs))
	for _, name := range namesLocked() {
		specs = append(specs, mu.jobs[name].def.Spec())
	}
	return specs
}

func namesLocked() []string {
	names := make([]string, 0, len(mu.jobs))
	for name := range mu.jobs {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}
