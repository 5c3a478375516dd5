package jobs

import (
	"context"
	"strings"
	"testing"

	"github.com/mrengine/mr/mapreduce"
)

// countJob is a minimal valid job for registry tests.
func countJob(name string) mapreduce.Job[string, int64] {
	j := mapreduce.Job[string, int64]{
		Name:    name,
		Input:   mapreduce.Input{Table: "t", Columns: []string{"k"}},
		Output:  mapreduce.Output{Table: "counts"},
		Key:     mapreduce.Codec[string]{Fields: []mapreduce.Field{{Name: "k", Type: mapreduce.TypeString}}},
		Value:   mapreduce.Codec[int64]{Fields: []mapreduce.Field{{Name: "n", Type: mapreduce.TypeInt64}}},
		Combine: func(a, b int64) int64 { return a + b },
	}
	j.Key.Encode = func(k string, e mapreduce.Encoder) { e.String(k) }
	j.Key.Decode = func(d mapreduce.Decoder) string { return d.String() }
	j.Value.Encode = func(v int64, e mapreduce.Encoder) { e.Int64(v) }
	j.Value.Decode = func(d mapreduce.Decoder) int64 { return d.Int64() }
	j.Map = func(_ context.Context, r mapreduce.Row, emit func(string, int64)) error {
		emit(r.String(0), 1)
		return nil
	}
	return j
}

func TestRegister_Duplicate(t *testing.T) {
	t.Parallel()
	name := newTestNames().job("registry_test_dup")
	Register(countJob(name))
	defer func() {
		r := recover()
		if r == nil {
			t.Fatal("registering a name twice did not panic")
		}
		if want := `jobs: job "` + name + `" is registered twice`; !strings.Contains(r.(error).Error(), want) {
			t.Errorf("panic %q, want %q", r, want)
		}
	}()
	Register(countJob(name))
}

func TestTryRegister_Invalid(t *testing.T) {
	t.Parallel()
	j := countJob("Bad Name")
	j.Map = nil
	j.Key.Fields = []mapreduce.Field{{Name: "k", Type: mapreduce.TypeInt64}}
	err := TryRegister(j)
	want := `jobs: job "Bad Name": name "Bad Name" must be lower case letters, digits and underscores, starting with a letter
Map is nil
Key.Encode field 0 (k) is string, Fields says int64`
	if err == nil || err.Error() != want {
		t.Errorf("TryRegister = %v\nwant %s", err, want)
	}
	if _, err := Lookup("Bad Name"); err == nil {
		t.Error("an invalid job was registered")
	}
}

func TestLookup_Unknown(t *testing.T) {
	t.Parallel()
	_, err := Lookup("daily_rolup")
	if err == nil || !strings.HasPrefix(err.Error(), `unknown job "daily_rolup"; registered jobs: `) || !strings.Contains(err.Error(), "daily_rollup") {
		t.Errorf("Lookup of an unknown job = %v, want an error listing the registered jobs", err)
	}
}

func TestList(t *testing.T) {
	t.Parallel()
	specs := List()
	for i := 1; i < len(specs); i++ {
		if specs[i-1].Name >= specs[i].Name {
			t.Fatalf("List is not sorted: %s before %s", specs[i-1].Name, specs[i].Name)
		}
	}
	def, err := Lookup("daily_rollup")
	if err != nil {
		t.Fatal(err)
	}
	spec := def.Spec()
	if spec.Output.Name != "daily_rollup" || len(spec.Output.Keys) != 3 || len(spec.Output.Values) != 2 {
		t.Errorf("daily_rollup spec = %+v", spec)
	}
}
