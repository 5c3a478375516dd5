package mapreduce

// Progress receives a run's progress, phase by phase: "map" counts rows
// against the planned row count, "reduce" counts buckets. Calls come from
// several goroutines at once.
type Progress interface {
	// Start begins a phase with its expected total and what is already
	// done (resumed work).
	Start(phase string, total, done int64)
	// Add reports n more units of the phase done.
	Add(phase string, n int64)
	// Finish ends a phase.
	Finish(phase string)
}

// Phases reported to Progress.
const (
	PhaseMap    = "map"
	PhaseReduce = "reduce"
)

type noProgress struct{}

func (noProgress) Start(string, int64, int64) {}
func (noProgress) Add(string, int64)          {}
func (noProgress) Finish(string)              {}
