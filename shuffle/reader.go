package shuffle

import (
	"context"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/mrengine/mr/internal/blobs"
	"github.com/mrengine/mr/spill"
)

// Read calls fn with every record batch of files, in order. Each file is
// checked against the size and checksum its manifest recorded (see
// spill.Open), so a file replaced or damaged since its commit is an error
// wrapping spill.ErrCorrupt, never a silent wrong result. fn must Retain a
// record it keeps past its return.
func Read(ctx context.Context, b *blobs.Bucket, files []File, fn func(rec arrow.RecordBatch) error, opts ...spill.Option) error {
	for _, f := range files {
		if err := readFile(ctx, b, f, fn, opts); err != nil {
			return err
		}
	}
	return nil
}

func readFile(ctx context.Context, b *blobs.Bucket, f File, fn func(arrow.RecordBatch) error, opts []spill.Option) error {
	r, err := spill.Open(ctx, b, f.File, opts...)
	if err != nil {
		return err
	}
	defer r.Close()
	for i := range r.NumRecords() {
		rec, err := r.Record(i)
		if err != nil {
			return err
		}
		err = fn(rec)
		rec.Release()
		if err != nil {
			return err
		}
	}
	return nil
}
