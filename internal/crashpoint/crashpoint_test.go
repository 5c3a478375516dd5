package crashpoint_test

import (
	"context"
	"slices"
	"testing"

	"github.com/mrengine/mr/internal/crashpoint"
)

func TestWithHook(t *testing.T) {
	t.Parallel()
	var hits []string
	ctx := crashpoint.WithHook(context.Background(), func(name string) { hits = append(hits, name) })
	crashpoint.Hit(ctx, crashpoint.MapSpilled)
	crashpoint.Hit(context.WithoutCancel(ctx), crashpoint.BucketApplied) // derived contexts carry the hook
	crashpoint.Hit(context.Background(), crashpoint.MapSpilled)          // other runs' contexts do not
	if want := []string{crashpoint.MapSpilled, crashpoint.BucketApplied}; !slices.Equal(hits, want) {
		t.Errorf("the hook saw %q, want %q", hits, want)
	}
}

// A hook that panics stops its caller at the point: how mapreducetest
// stops a run in-process.
func TestWithHook_Panic(t *testing.T) {
	t.Parallel()
	type stop struct{}
	ctx := crashpoint.WithHook(context.Background(), func(string) { panic(stop{}) })
	reached := false
	func() {
		defer func() {
			if p := recover(); p != (stop{}) {
				t.Errorf("recovered %v, want the hook's panic", p)
			}
		}()
		crashpoint.Hit(ctx, crashpoint.MapSpilled)
		reached = true
	}()
	if reached {
		t.Error("Hit returned after its hook panicked")
	}
}
