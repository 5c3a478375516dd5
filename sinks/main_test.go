package sinks_test

import (
	"testing"

	"github.com/mrengine/mr/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }
