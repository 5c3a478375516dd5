package blobs

import (
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
