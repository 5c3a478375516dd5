package blobs

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"gocloud.dev/blob"
)

// s3AbortTimeout bounds the request that aborts an S3 multipart upload
// once its context is cancelled: one small request, so a minute is only a
// guard against a hung connection.
const s3AbortTimeout = time.Minute

// s3Client returns the S3 client of bb, or nil if bb is not an s3blob
// bucket. It needs no driver linked: As only compares types.
func s3Client(bb *blob.Bucket) *s3.Client {
	var c *s3.Client
	if !bb.As(&c) {
		return nil
	}
	return c
}

// s3BeforeWrite makes an S3 Writer abort its multipart upload when its
// context is cancelled, which is how Abort discards a blob.
//
// s3blob (gocloud v0.47.0) uploads through the SDK's transfer manager
// (v0.4.3), which uploads a blob past 16 MiB in parts and, when the upload
// fails, aborts it with the upload's own context unless FailTimeout is
// set, and s3blob never sets it. So the abort request is cancelled too,
// and S3 keeps the parts: never listed, never visible, billed until a
// lifecycle rule removes them. BeforeWrite hands over the transfer manager
// s3blob made for this blob; it is replaced by one with the same settings
// (the defaults, since NewWriter sets no BufferSize or MaxConcurrency, and
// the bucket's request checksums) plus FailTimeout. Drop this when s3blob
// sets FailTimeout itself.
func s3BeforeWrite(c *s3.Client) func(as func(any) bool) error {
	return func(as func(any) bool) error {
		var tm *transfermanager.Client
		if as(&tm) {
			*tm = *transfermanager.New(c, func(o *transfermanager.Options) {
				o.RequestChecksumCalculation = c.Options().RequestChecksumCalculation
				o.FailTimeout = s3AbortTimeout
			})
		}
		return nil
	}
}

// sweepUploads aborts the multipart uploads of key left after a write was
// aborted. The transfer manager aborts its upload itself (see
// s3BeforeWrite), but a part whose request the cancel cut short on the
// client may still be written on the server after that, which leaves the
// upload in place: S3's documentation of AbortMultipartUpload warns that
// an upload may have to be aborted more than once. So the uploads of key
// are listed and aborted, twice, s3SweepWait apart, to catch a part that
// landed late. Keys are unique per attempt, so no other writer's upload
// is aborted.
func (b *Bucket) sweepUploads(key string) error {
	ctx, cancel := context.WithTimeout(context.Background(), s3AbortTimeout)
	defer cancel()
	full := b.s3Prefix + key
	for sweep := range 2 {
		if sweep > 0 {
			time.Sleep(s3SweepWait)
		}
		p := s3.NewListMultipartUploadsPaginator(b.s3, &s3.ListMultipartUploadsInput{Bucket: &b.s3Bucket, Prefix: &full})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return err
			}
			for _, up := range page.Uploads {
				if up.Key == nil || *up.Key != full {
					continue
				}
				if _, err := b.s3.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &b.s3Bucket, Key: up.Key, UploadId: up.UploadId}); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// s3MultipartThreshold is the blob size from which the transfer manager
// uploads in parts: its default (v0.4.3), which s3blob keeps. A smaller
// blob is one PUT, with no upload to sweep.
const s3MultipartThreshold = 16 << 20

// s3SweepWait is how long sweepUploads waits for a late part before it
// looks again: the server writes a part it has whole within milliseconds.
const s3SweepWait = 200 * time.Millisecond
