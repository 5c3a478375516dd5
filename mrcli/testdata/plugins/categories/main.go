// Command categories is a Go plugin for the mrcli tests: its init
// registers the job plugin_category_totals, as a user's plugin would.
package main

import (
	"context"

	"github.com/mrengine/mr/jobs"
	"github.com/mrengine/mr/mapreduce"
)

// totals is the job's value: events and their amounts.
type totals struct{ Events, Cents int64 }

func init() {
	j := mapreduce.Job[string, totals]{
		Name:        "plugin_category_totals",
		Description: "events and total cents per category (a test plugin)",
		Input:       mapreduce.Input{Table: "events", Cursor: "id", Columns: []string{"category", "amount_cents"}},
		Output:      mapreduce.Output{Table: "plugin_category_totals"},
		Key:         mapreduce.Codec[string]{Fields: []mapreduce.Field{{Name: "category", Type: mapreduce.TypeString}}},
		Value: mapreduce.Codec[totals]{Fields: []mapreduce.Field{
			{Name: "events", Type: mapreduce.TypeInt64},
			{Name: "total_cents", Type: mapreduce.TypeInt64},
		}},
		Map: func(_ context.Context, r mapreduce.Row, emit func(string, totals)) error {
			emit(r.String(0), totals{Events: 1, Cents: r.Int64(1)})
			return nil
		},
		Combine: func(a, b totals) totals { return totals{a.Events + b.Events, a.Cents + b.Cents} },
	}
	j.Key.Encode = func(k string, e mapreduce.Encoder) { e.String(k) }
	j.Key.Decode = func(d mapreduce.Decoder) string { return d.String() }
	j.Value.Encode = func(v totals, e mapreduce.Encoder) { e.Int64(v.Events); e.Int64(v.Cents) }
	j.Value.Decode = func(d mapreduce.Decoder) totals { return totals{d.Int64(), d.Int64()} }
	jobs.Register(j)
}

func main() {}
