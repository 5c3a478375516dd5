package blobs_test

import (
	"testing"

	"github.com/mrengine/mr/internal/s3test"
)

// TestMain stops the S3 gateway that s3test starts for the S3 tests.
func TestMain(m *testing.M) { s3test.Main(m) }
