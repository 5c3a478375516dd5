package rollup

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cockroachdb/apd/v3"

	"github.com/mrengine/mr/mapreduce"
)

// The benchmarks of this file time the rollup's own share of a run, the
// path every row and every shuffled record takes, without a source, a
// shuffle file or a sink: BenchmarkJob_Map reads rows of an in-memory
// batch, builds their keys and groups and combines them as the engine's
// combiner does; BenchmarkJob_Shuffle encodes the combined groups (key
// and states) as a spill does and decodes and merges them as a reduce
// does. The rows are db-benchmark's (see benchmarks/dbbench_gen_test.go)
// and the questions those whose profile shows the rollup most.
//
//	go test ./rollup -run '^$' -bench 'Job_' -benchmem -count 5

// hotRows is the batch size: with hotPartition rows per combiner, as a
// map task of a 1M-row run over 16 partitions sees them.
const (
	hotRows      = 62_500
	hotPartition = 62_500
	hotK         = 100
)

// hotColumns are the columns of db-benchmark's table, and their types.
var hotColumns = []struct{ name, typ string }{
	{"id1", "text"}, {"id2", "text"}, {"id3", "text"},
	{"id4", "integer"}, {"id5", "integer"}, {"id6", "integer"},
	{"v1", "integer"}, {"v2", "integer"}, {"v3", "numeric(9,6)"},
}

var hotQuestions = []struct{ name, sql string }{
	{"q3", `SELECT id3, sum(v1) AS v1, avg(v3) AS v3 FROM t GROUP BY id3`},
	{"q5", `SELECT id6, sum(v1) AS v1, sum(v2) AS v2, sum(v3) AS v3 FROM t GROUP BY id6`},
	{"q8", `SELECT id6, max_n(v3, 2) AS largest2_v3 FROM t GROUP BY id6`},
	{"q10", `SELECT id1, id2, id3, id4, id5, id6, sum(v3) AS v3, count(*) AS count FROM t GROUP BY id1, id2, id3, id4, id5, id6`},
}

// hotJob compiles sql and returns its job and a batch of hotRows rows of
// the expressions it reads, as a PostgreSQL source stores them.
func hotJob(b *testing.B, sql string) (*job, *mapreduce.Batch) {
	b.Helper()
	q, err := Parse(sql)
	if err != nil {
		b.Fatal(err)
	}
	in := q.Input("id")
	types := make([]string, len(in.Exprs))
	cols := make([]int, len(in.Exprs))
	for i, e := range in.Exprs {
		for c, col := range hotColumns {
			if col.name == e {
				types[i], cols[i] = col.typ, c
			}
		}
	}
	p, err := Compile(q, in, types, Options{Into: "out", PushDown: PushDownOff})
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	batch := mapreduce.NewBatch(in.Exprs)
	n := int64(hotRows) * 16 // the table's rows, of which the batch is a partition
	for r := range hotRows {
		row := []any{
			fmt.Sprintf("id%03d", rng.Int64N(hotK)+1),
			fmt.Sprintf("id%03d", rng.Int64N(hotK)+1),
			fmt.Sprintf("id%010d", rng.Int64N(n/hotK)+1),
			rng.Int64N(hotK) + 1,
			rng.Int64N(hotK) + 1,
			rng.Int64N(n/hotK) + 1,
			rng.Int64N(5) + 1,
			rng.Int64N(15) + 1,
			apd.New(rng.Int64N(100_000_000), -6).Text('f'),
		}
		batch.Append(int64(r))
		for i, c := range cols {
			batch.Set(i, row[c])
		}
	}
	return p.job, batch
}

// hotCombine maps the rows of batch and combines them into m as the
// engine's combiner does.
func hotCombine(b *testing.B, j *job, batch *mapreduce.Batch, lo, hi int, m map[string]*group) {
	for i := lo; i < hi; i++ {
		row := batch.Row(i)
		k, err := j.rowKey(row)
		if err != nil {
			b.Fatal(err)
		}
		g, err := j.rowGroup(row)
		if err != nil {
			b.Fatal(err)
		}
		if old, ok := m[k]; ok {
			m[k] = j.combine(old, g)
			j.release(g)
		} else {
			m[k] = g
		}
	}
}

func BenchmarkJob_Map(b *testing.B) {
	for _, hq := range hotQuestions {
		b.Run(hq.name, func(b *testing.B) {
			j, batch := hotJob(b, hq.sql)
			m := map[string]*group{}
			b.ReportAllocs()
			for b.Loop() {
				for lo := 0; lo < batch.Len(); lo += hotPartition {
					hotCombine(b, j, batch, lo, min(lo+hotPartition, batch.Len()), m)
					clear(m)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch.Len()), "ns/row")
		})
	}
}

func BenchmarkJob_Shuffle(b *testing.B) {
	for _, hq := range hotQuestions {
		b.Run(hq.name, func(b *testing.B) {
			j, batch := hotJob(b, hq.sql)
			keys, values := j.keyCodec(), j.valueCodec()
			var e fieldEncoder
			b.ReportAllocs()
			var records int
			for b.Loop() {
				b.StopTimer()
				m := map[string]*group{}
				hotCombine(b, j, batch, 0, batch.Len(), m)
				b.StartTimer()
				e.buf = e.buf[:0]
				for k, g := range m {
					keys.Encode(k, &e) // the hash
					keys.Encode(k, &e)
					values.Encode(g, &e)
				}
				// Twice the records, as a reduce merges the files of two
				// map tasks.
				out := map[string]*group{}
				for range 2 {
					d := fieldDecoder{b: e.buf}
					for range len(m) {
						keys.Decode(&d) // the hash
						k := keys.Decode(&d)
						g := values.Decode(&d)
						if old, ok := out[k]; ok {
							out[k] = j.combine(old, g)
						} else {
							out[k] = g
						}
					}
				}
				records += len(m)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(records), "ns/record")
		})
	}
}

// fieldEncoder writes fields to buf as the shuffle's Arrow builders do:
// copying strings and bytes, and a decimal as its text. Each field is a
// tag byte, 0 for NULL, then its value.
type fieldEncoder struct{ buf []byte }

func (e *fieldEncoder) tag() *fieldEncoder { e.buf = append(e.buf, 1); return e }
func (e *fieldEncoder) Int64(v int64)      { e.tag().buf = binary.AppendVarint(e.buf, v) }
func (e *fieldEncoder) Float64(v float64) {
	e.tag().buf = binary.LittleEndian.AppendUint64(e.buf, math.Float64bits(v))
}
func (e *fieldEncoder) String(v string)        { e.tag().buf = appendBytes(e.buf, v) }
func (e *fieldEncoder) Bool(v bool)            { e.tag().buf = binary.AppendVarint(e.buf, int64(boolInt(v))) }
func (e *fieldEncoder) Date(v mapreduce.Date)  { e.Int64(int64(v)) }
func (e *fieldEncoder) Time(v time.Time)       { e.Int64(v.UnixMicro()) }
func (e *fieldEncoder) Decimal(v *apd.Decimal) { e.tag().buf = appendBytes(e.buf, v.Text('f')) }
func (e *fieldEncoder) Bytes(v []byte)         { e.tag().buf = appendBytes(e.buf, v) }
func (e *fieldEncoder) Null()                  { e.buf = append(e.buf, 0) }

func boolInt(v bool) int {
	if v {
		return 1
	}
	return 0
}

// fieldDecoder reads what a fieldEncoder wrote, returning copies as the
// shuffle's RecordDecoder does.
type fieldDecoder struct{ b []byte }

func (d *fieldDecoder) Null() bool {
	null := d.b[0] == 0
	if null {
		d.b = d.b[1:]
	}
	return null
}

func (d *fieldDecoder) int() int64 {
	x, n := binary.Varint(d.b[1:])
	d.b = d.b[1+n:]
	return x
}

func (d *fieldDecoder) raw() []byte {
	l, n := binary.Uvarint(d.b[1:])
	x := d.b[1+n : 1+n+int(l)]
	d.b = d.b[1+n+int(l):]
	return x
}

func (d *fieldDecoder) Int64() int64 { return d.int() }
func (d *fieldDecoder) Float64() float64 {
	f := math.Float64frombits(binary.LittleEndian.Uint64(d.b[1:]))
	d.b = d.b[9:]
	return f
}
func (d *fieldDecoder) String() string       { return string(d.raw()) }
func (d *fieldDecoder) Bool() bool           { return d.int() != 0 }
func (d *fieldDecoder) Date() mapreduce.Date { return mapreduce.Date(d.int()) }
func (d *fieldDecoder) Time() time.Time      { return time.UnixMicro(d.int()).UTC() }
func (d *fieldDecoder) Bytes() []byte        { return append([]byte(nil), d.raw()...) }
func (d *fieldDecoder) Decimal() *apd.Decimal {
	x, _, err := apd.NewFromString(string(d.raw()))
	if err != nil {
		panic(err)
	}
	return x
}
