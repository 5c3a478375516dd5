package mapreduce

import (
	"context"
	"errors"

	"github.com/mrengine/mr/shuffle"
)

// maxBucketAttempts bounds how often a bucket is reduced and applied when
// the sink says it was not applied (ErrNotApplied). Each Apply already
// rides out a server that is away for its retry budget before it reads a
// row, so a bucket fails this often only when the connection keeps
// breaking mid-transaction.
const maxBucketAttempts = 4

// applyBucket reduces bucket b and applies it (reduceBucket), and again
// from its committed files, which hold every row of it, while the sink
// reports that the attempt left it unapplied: the stream of rows a failed
// transaction consumed cannot be rewound, but it can be read anew.
func (r *Runner) applyBucket(ctx context.Context, t OutputTable, commit string, b int, files []shuffle.File) error {
	for attempt := 1; ; attempt++ {
		err := r.reduceBucket(ctx, t, commit, b, files)
		if err == nil || !errors.Is(err, ErrNotApplied) || attempt == maxBucketAttempts || ctx.Err() != nil {
			return err
		}
		r.log.Warn("applying the bucket again from its files", "bucket", b, "attempt", attempt+1, "err", err)
	}
}
