package mapreduce_test

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/apd/v3"
	"github.com/mrengine/mr/internal/runtest"
	"github.com/mrengine/mr/mapreduce"
)

// typedKey and typedValue hold one field of every type, so that every
// Encoder and Decoder method runs through the whole engine: map, combine,
// hash, spill to Arrow, read back, re-partition, finalize, sink rows.
type typedKey struct {
	I int64
	F float64
	S string
	B bool
	D mapreduce.Date
	T time.Time
}

type typedValue struct {
	N      int64
	Sum    float64
	Max    string
	Any    bool
	Last   mapreduce.Date
	Latest time.Time
	Amount *apd.Decimal // exact sum
	Blob   []byte       // the greatest
	Opt    *int64       // sum of the non-NULL, NULL if none
}

var typedFields = []mapreduce.Field{
	{Name: "i", Type: mapreduce.TypeInt64}, {Name: "f", Type: mapreduce.TypeFloat64},
	{Name: "s", Type: mapreduce.TypeString}, {Name: "b", Type: mapreduce.TypeBool},
	{Name: "d", Type: mapreduce.TypeDate}, {Name: "t", Type: mapreduce.TypeTimestamp},
}

// typedJob returns the job over typedKey and typedValue, with hand-written
// codecs or, if derived, with codecs derived from the types: their field
// names spell the same columns.
func typedJob(t *testing.T, derived bool) *mapreduce.Job[typedKey, typedValue] {
	t.Helper()
	j := &mapreduce.Job[typedKey, typedValue]{
		Name:   "types_test",
		Input:  mapreduce.Input{Table: "rows", Columns: []string{"grp", "amount", "kind"}},
		Output: mapreduce.Output{Table: "typed"},
		Key: mapreduce.Codec[typedKey]{
			Fields: typedFields,
			Encode: func(k typedKey, e mapreduce.Encoder) {
				e.Int64(k.I)
				e.Float64(k.F)
				e.String(k.S)
				e.Bool(k.B)
				e.Date(k.D)
				e.Time(k.T)
			},
			Decode: func(d mapreduce.Decoder) typedKey {
				return typedKey{I: d.Int64(), F: d.Float64(), S: d.String(), B: d.Bool(), D: d.Date(), T: d.Time()}
			},
		},
		Value: mapreduce.Codec[typedValue]{
			Fields: []mapreduce.Field{
				{Name: "n", Type: mapreduce.TypeInt64}, {Name: "sum", Type: mapreduce.TypeFloat64},
				{Name: "max", Type: mapreduce.TypeString}, {Name: "any", Type: mapreduce.TypeBool},
				{Name: "last", Type: mapreduce.TypeDate}, {Name: "latest", Type: mapreduce.TypeTimestamp},
				{Name: "amount", Type: mapreduce.TypeDecimal}, {Name: "blob", Type: mapreduce.TypeBytes},
				{Name: "opt", Type: mapreduce.TypeInt64},
			},
			Encode: func(v typedValue, e mapreduce.Encoder) {
				e.Int64(v.N)
				e.Float64(v.Sum)
				e.String(v.Max)
				e.Bool(v.Any)
				e.Date(v.Last)
				e.Time(v.Latest)
				if v.Amount == nil {
					e.Null()
				} else {
					e.Decimal(v.Amount)
				}
				e.Bytes(v.Blob)
				if v.Opt == nil {
					e.Null()
				} else {
					e.Int64(*v.Opt)
				}
			},
			Decode: func(d mapreduce.Decoder) typedValue {
				v := typedValue{N: d.Int64(), Sum: d.Float64(), Max: d.String(), Any: d.Bool(), Last: d.Date(), Latest: d.Time()}
				if !d.Null() {
					v.Amount = d.Decimal()
				}
				v.Blob = d.Bytes()
				if !d.Null() {
					o := d.Int64()
					v.Opt = &o
				}
				return v
			},
		},
		Map: func(_ context.Context, row mapreduce.Row, emit func(typedKey, typedValue)) error {
			k, v := typedPair(row.Cursor(), row.String(0), row.Int64(1))
			emit(k, v)
			return nil
		},
		Combine: combineTyped,
	}
	if derived {
		j.Key, j.Value = mapreduce.Codec[typedKey]{}, mapreduce.Codec[typedValue]{}
	}
	if err := j.Validate(); err != nil {
		t.Fatal(err)
	}
	return j
}

func combineTyped(a, b typedValue) typedValue {
	v := typedValue{
		N: a.N + b.N, Sum: a.Sum + b.Sum, Max: max(a.Max, b.Max), Any: a.Any || b.Any,
		Last: max(a.Last, b.Last), Latest: latest(a.Latest, b.Latest),
		Amount: new(apd.Decimal), Blob: a.Blob, Opt: a.Opt,
	}
	if _, err := apd.BaseContext.Add(v.Amount, a.Amount, b.Amount); err != nil {
		panic(err)
	}
	if bytes.Compare(b.Blob, a.Blob) > 0 {
		v.Blob = b.Blob
	}
	if b.Opt != nil {
		sum := *b.Opt
		if a.Opt != nil {
			sum += *a.Opt
		}
		v.Opt = &sum
	}
	return v
}

func latest(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// typedPair is what the job emits for a row. Keys take -0 and +0 (one key
// to Go and to SQL), negative and pre-epoch dates and times, and empty
// strings; values sum halves, so that any order of sums is exact.
func typedPair(id int64, group string, amount int64) (typedKey, typedValue) {
	f := float64(id%3) - 1 // -1, 0, 1
	if id%6 == 1 {
		f = math.Copysign(0, -1)
	}
	if id%9 == 0 {
		group = ""
	}
	ts := time.UnixMicro(int64(id%4-2) * 86_400_000_123).UTC() // before and after the epoch
	v := typedValue{N: 1, Sum: float64(amount) / 2, Max: fmt.Sprint(id), Any: id%11 == 0, Last: mapreduce.Date(id), Latest: time.UnixMicro(id * 1_000_001).UTC(),
		// An amount of 20 digits and 10 decimals, beyond a float64.
		Amount: apd.New(amount*1_000_000_007+id, -10), Blob: []byte{byte(id), 0, byte(id >> 8)}}
	if id%3 != 0 {
		v.Opt = &amount
	}
	return typedKey{I: id % 7, F: f, S: group, B: id%2 == 0, D: mapreduce.Date(id%5 - 2), T: ts}, v
}

// rowSink keeps every row it is given, by the text of its key columns.
type rowSink struct {
	mu      sync.Mutex
	rows    map[string][]any
	commits map[string]bool
}

func (s *rowSink) String() string                                       { return "mem:rows" }
func (s *rowSink) Prepare(context.Context, mapreduce.OutputTable) error { return nil }

func (s *rowSink) Committed(_ context.Context, commit string) ([]int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var bs []int
	for k := range s.commits {
		var c string
		var b int
		if n, _ := fmt.Sscanf(k, "%s %d", &c, &b); n == 2 && c == commit {
			bs = append(bs, b)
		}
	}
	return bs, nil
}

func (s *rowSink) Apply(_ context.Context, t mapreduce.OutputTable, commit string, bucket int, rows mapreduce.OutputRows) error {
	staged := map[string][]any{}
	for rows.Next() {
		v, err := rows.Values()
		if err != nil {
			return err
		}
		k := typedKeyText(v[:len(t.Keys)])
		if _, dup := staged[k]; dup {
			return fmt.Errorf("bucket %d yields key %s twice", bucket, k)
		}
		staged[k] = slices.Clone(v)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.commits[fmt.Sprintf("%s %d", commit, bucket)] = true
	maps.Copy(s.rows, staged)
	return nil
}

// optValue is what a sink row holds for a nullable integer.
func optValue(p *int64) any {
	if p == nil {
		return nil
	}
	return *p
}

// typedKeyText spells key values so that -0 and +0 read alike.
func typedKeyText(vals []any) string {
	var b strings.Builder
	for _, v := range vals {
		if f, ok := v.(float64); ok && f == 0 {
			v = 0.0
		}
		fmt.Fprintf(&b, "%v|", v)
	}
	return b.String()
}

func TestRun_EveryFieldType(t *testing.T) {
	t.Parallel()
	rows := randomRows(11, 12_000, 2_000, 0)
	want := map[string][]any{}
	vals := map[string]typedValue{}
	for _, r := range rows {
		k, v := typedPair(r.id, r.group, r.amount)
		kv := []any{k.I, k.F, k.S, k.B, k.D, k.T}
		text := typedKeyText(kv)
		if old, ok := vals[text]; ok {
			v = combineTyped(old, v)
		}
		vals[text] = v
		want[text] = append(kv, v.N, v.Sum, v.Max, v.Any, v.Last, v.Latest, v.Amount, v.Blob, optValue(v.Opt))
	}
	for _, c := range []struct {
		derived bool
		memory  int64
	}{
		{false, 512 << 20}, {false, 1 << 20}, // 1 MiB: map flushes and reduce re-partitions
		{true, 512 << 20}, {true, 1 << 20},
	} {
		derived, memory := c.derived, c.memory
		t.Run(fmt.Sprintf("derived=%t/memory=%d", derived, memory), func(t *testing.T) {
			t.Parallel()
			cfg := runtest.Config(t)
			cfg.Partitions, cfg.Buckets, cfg.Workers, cfg.Memory = 4, 3, 2, memory
			sink := &rowSink{rows: map[string][]any{}, commits: map[string]bool{}}
			s, err := mapreduce.Run(context.Background(), typedJob(t, derived), &memSource{rows: rows, read: map[int64]int{}}, sink, cfg)
			if err != nil {
				t.Fatal(err)
			}
			runtest.CheckArrowJS(t, cfg, s.RunID)
			if len(sink.rows) != len(want) {
				t.Errorf("sink has %d rows, want %d", len(sink.rows), len(want))
			}
			for k, w := range want {
				got, ok := sink.rows[k]
				if !ok {
					t.Fatalf("sink lacks key %s", k)
				}
				if typedKeyText(got) != typedKeyText(w) {
					t.Fatalf("key %s:\n got %v\nwant %v", k, got, w)
				}
			}
		})
	}
}
