// Package jobs is the job registry and holds the built-in jobs.
//
// Jobs register themselves from init, the way database/sql drivers do:
//
//	func init() {
//		jobs.Register(mapreduce.Job[Key, Totals]{Name: "my_rollup", …})
//	}
//
// and a binary that imports the package (or loads it as a plugin) can run
// them by name. A job's Name is its stable identity: run ids derive from it.
package jobs

import (
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/mrengine/mr/mapreduce"
)

var (
	mu       sync.RWMutex
	registry = map[string]mapreduce.Definition{}
)

// Register adds a job to the registry. It panics if the job is invalid or
// its name is taken: both are programming errors, found at start-up.
// Key and value types are checked against Map's emit at compile time.
func Register[K comparable, V any](j mapreduce.Job[K, V]) {
	if err := TryRegister(j); err != nil {
		panic(err)
	}
}

// TryRegister is Register returning an error instead of panicking, for
// jobs loaded at run time (--plugin).
func TryRegister[K comparable, V any](j mapreduce.Job[K, V]) error {
	if err := j.Validate(); err != nil {
		return fmt.Errorf("jobs: %w", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if _, dup := registry[j.Name]; dup {
		return fmt.Errorf("jobs: job %q is registered twice", j.Name)
	}
	registry[j.Name] = &j
	return nil
}

// Lookup returns the job registered under name.
func Lookup(name string) (mapreduce.Definition, error) {
	mu.RLock()
	defer mu.RUnlock()
	if def, ok := registry[name]; ok {
		return def, nil
	}
	return nil, fmt.Errorf("unknown job %q; registered jobs: %s", name, strings.Join(namesLocked(), ", "))
}

// List returns the specs of all registered jobs, sorted by name.
func List() []mapreduce.Spec {
	mu.RLock()
	defer mu.RUnlock()
	specs := make([]mapreduce.Spec, 0, len(registry))
	for _, name := range namesLocked() {
		specs = append(specs, registry[name].Spec())
	}
	return specs
}

func namesLocked() []string {
	names := make([]string, 0, len(registry))
	for name := range registry {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}
