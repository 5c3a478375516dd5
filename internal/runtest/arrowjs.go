package runtest

import (
	"context"
	"encoding/hex"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/mrengine/mr/internal/arrowjs"
	"github.com/mrengine/mr/internal/blobs"
	"github.com/mrengine/mr/mapreduce"
	"github.com/mrengine/mr/shuffle"
)

// CheckArrowJS reads every shuffle file that run committed (its
// checkpoints' and its replay manifest's) with Apache Arrow JS, an Arrow
// implementation independent of arrow-go, and fails the test unless it
// sees the values arrow-go reads. The run's blobs must be in cfg.Workdir.
func CheckArrowJS(t testing.TB, cfg mapreduce.Config, run string) {
	t.Helper()
	ri, err := mapreduce.Inspect(context.Background(), cfg, run)
	if err != nil {
		t.Fatal(err)
	}
	b, err := blobs.OpenDir(cfg.Workdir)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var files []shuffle.File
	var paths []string
	for _, cp := range ri.Checkpoints {
		if cp != nil {
			files = append(files, cp.Files...)
		}
	}
	if ri.Replay != nil {
		for _, f := range ri.Replay.Files {
			files = append(files, f.File)
		}
	}
	for _, f := range files {
		paths = append(paths, filepath.Join(cfg.Workdir, filepath.FromSlash(f.Key)))
	}
	tables := arrowjs.Read(t, paths...)
	for i, f := range files {
		var want [][]any
		err := shuffle.Read(context.Background(), b, []shuffle.File{f}, func(rec arrow.RecordBatch) error {
			for row := range int(rec.NumRows()) {
				var vals []any
				for _, col := range rec.Columns() {
					if col.IsNull(row) {
						vals = append(vals, nil)
						continue
					}
					switch a := col.(type) {
					case *array.Int64:
						vals = append(vals, a.Value(row))
					case *array.Float64:
						vals = append(vals, a.Value(row))
					case *array.String:
						vals = append(vals, a.Value(row))
					case *array.Binary:
						vals = append(vals, hex.EncodeToString(a.Value(row)))
					case *array.Boolean:
						vals = append(vals, a.Value(row))
					case *array.Date32:
						vals = append(vals, int64(a.Value(row)))
					case *array.Timestamp:
						vals = append(vals, int64(a.Value(row)))
					default:
						t.Fatalf("%s: column of unexpected type %s", f.Key, col.DataType())
					}
				}
				want = append(want, vals)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := tables[i].Rows; !reflect.DeepEqual(got, want) {
			t.Fatalf("Arrow JS reads %s as %d rows, the engine wrote %d; first: %v, want %v", f.Key, len(got), len(want), got[:min(1, len(got))], want[:min(1, len(want))])
		}
	}
	if len(files) == 0 {
		t.Fatal("the run committed no shuffle files")
	}
}
