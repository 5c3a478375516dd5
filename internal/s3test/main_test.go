package s3test_test

import (
	"testing"

	"github.com/mrengine/mr/internal/s3test"
)

func TestMain(m *testing.M) { s3test.Main(m) }
