package jobs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
)

// These tests load stand-in plugins: an init function that LoadPlugin runs
// where plugin.Open would run the plugin's. mrcli's TestPlugin builds and
// loads real ones, in a binary whose jobs package has no test files (Go
// refuses a plugin whose shared packages differ, and this package's test
// build does).

// pluginFile returns the path of a new file for a stand-in plugin.
func pluginFile(t *testing.T, name string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// initOnly returns an opener that runs init in place of a plugin's.
func initOnly(init func()) func(string) error {
	return func(string) error { init(); return nil }
}

// testNames makes job names unique to one run of a test: the registry
// lasts as long as the process, and go test -count=N runs a test N times.
type testNames struct{ suffix string }

var testRuns atomic.Int64

func newTestNames() testNames { return testNames{fmt.Sprintf("_r%d", testRuns.Add(1))} }

// job returns the name base in this run.
func (n testNames) job(base string) string { return base + n.suffix }

// base turns this run's names in s back into their bases.
func (n testNames) base(s string) string { return strings.ReplaceAll(s, n.suffix, "") }

// bases is base for each name.
func (n testNames) bases(names []string) []string {
	out := make([]string, len(names))
	for i, name := range names {
		out[i] = n.base(name)
	}
	return out
}

func registered(name string) bool {
	_, err := Lookup(name)
	return err == nil
}

// The TestLoadPlugin tests do not run in parallel: a job registered while
// a plugin loads counts as the plugin's, so they run before the parallel
// tests, which register jobs of their own.
func TestLoadPlugin_Registers(t *testing.T) {
	n := newTestNames()
	path := pluginFile(t, "two.so")
	names, err := loadPlugin(path, initOnly(func() {
		Register(countJob(n.job("plugin_test_b")))
		Register(countJob(n.job("plugin_test_a")))
	}))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"plugin_test_a", "plugin_test_b"}; !slices.Equal(n.bases(names), want) {
		t.Errorf("names = %q, want %q", names, want)
	}
	if !registered(n.job("plugin_test_a")) || !registered(n.job("plugin_test_b")) {
		t.Error("the plugin's jobs are not registered")
	}

	// Go runs a plugin's init once: loading it again returns the same names.
	again, err := loadPlugin(path, func(string) error { t.Error("opened twice"); return nil })
	if err != nil || !slices.Equal(again, names) {
		t.Errorf("second load = %q, %v; want %q, nil", again, err, names)
	}
}

func TestLoadPlugin_Duplicate(t *testing.T) {
	n := newTestNames()
	path := pluginFile(t, "dup.so")
	bad := countJob(n.job("plugin_test_Bad"))
	bad.Map = nil
	var names []string
	var err error
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.Fatalf("LoadPlugin panicked: %v", r)
			}
		}()
		names, err = loadPlugin(path, initOnly(func() {
			Register(countJob(n.job("plugin_test_dup_ok")))
			Register(countJob("daily_rollup"))
			Register(countJob(n.job("plugin_test_dup_twice")))
			Register(countJob(n.job("plugin_test_dup_twice")))
			Register(bad)
		}))
	}()
	want := "plugin " + path + `: job "daily_rollup" is already registered (built into this binary); rename the plugin's job
job "plugin_test_dup_twice" is registered twice by this plugin
job "plugin_test_Bad": name "plugin_test_Bad" must be lower case letters, digits and underscores, starting with a letter
Map is nil`
	if err == nil || n.base(err.Error()) != want {
		t.Fatalf("LoadPlugin = %v\nwant %s", err, want)
	}
	if pe := (*PluginError)(nil); !errors.As(err, &pe) || pe.Path != path {
		t.Errorf("error %#v is not a *PluginError for %s", err, path)
	}
	if names != nil {
		t.Errorf("names = %q, want none", names)
	}
	for _, name := range []string{"plugin_test_dup_ok", "plugin_test_dup_twice"} {
		if registered(n.job(name)) {
			t.Errorf("job %s of a plugin that failed is registered", name)
		}
	}
	if def, _ := Lookup("daily_rollup"); def == nil || def.Spec().Input.Table != "events" {
		t.Errorf("daily_rollup is now %v, want the built-in job", def)
	}
	if _, again := loadPlugin(path, initOnly(func() {})); again == nil || n.base(again.Error()) != want {
		t.Errorf("second load = %v, want the first error", again)
	}
}

func TestLoadPlugin_DuplicateOfPlugin(t *testing.T) {
	n := newTestNames()
	first := pluginFile(t, "first.so")
	if _, err := loadPlugin(first, initOnly(func() { Register(countJob(n.job("plugin_test_shared"))) })); err != nil {
		t.Fatal(err)
	}
	second := pluginFile(t, "second.so")
	_, err := loadPlugin(second, initOnly(func() { Register(countJob(n.job("plugin_test_shared"))) }))
	want := "plugin " + second + `: job "plugin_test_shared" is already registered (by plugin ` + first + `); rename the plugin's job`
	if err == nil || n.base(err.Error()) != want {
		t.Errorf("LoadPlugin = %v\nwant %s", err, want)
	}
	err = TryRegister(countJob(n.job("plugin_test_shared")))
	want = `jobs: job "plugin_test_shared" is already registered (by plugin ` + first + `)`
	if err == nil || n.base(err.Error()) != want {
		t.Errorf("TryRegister = %v\nwant %s", err, want)
	}
}

// TestLoadPlugin_TryRegister: a plugin that handles TryRegister's error
// itself loads.
func TestLoadPlugin_TryRegister(t *testing.T) {
	n := newTestNames()
	var tryErr error
	names, err := loadPlugin(pluginFile(t, "try.so"), initOnly(func() {
		if tryErr = TryRegister(countJob("daily_rollup")); tryErr != nil {
			Register(countJob(n.job("plugin_test_try_fallback")))
		}
	}))
	if want := `jobs: job "daily_rollup" is already registered (built into this binary); rename the plugin's job`; tryErr == nil || tryErr.Error() != want {
		t.Errorf("TryRegister in the plugin = %v, want %s", tryErr, want)
	}
	if err != nil || !slices.Equal(n.bases(names), []string{"plugin_test_try_fallback"}) {
		t.Errorf("LoadPlugin = %q, %v; want the fallback job", names, err)
	}
}

// TestLoadPlugin_Panic: a plugin whose init panics is an error, with the
// stack of the panic.
func TestLoadPlugin_Panic(t *testing.T) {
	n := newTestNames()
	path := pluginFile(t, "panics.so")
	_, err := loadPlugin(path, initOnly(func() {
		Register(countJob(n.job("plugin_test_before_panic")))
		panicInInit()
	}))
	pe := (*PluginError)(nil)
	if !errors.As(err, &pe) || pe.Err.Error() != "its init panicked: bad config" {
		t.Fatalf("LoadPlugin = %v, want a panic as a *PluginError", err)
	}
	if lines := strings.Split(pe.Hint, "\n"); !strings.HasSuffix(lines[0], ".panicInInit(...)") || strings.Contains(pe.Hint, "runPluginInit") {
		t.Errorf("Hint is not the stack from panicInInit to the init:\n%s", pe.Hint)
	}
	if registered(n.job("plugin_test_before_panic")) {
		t.Error("the job registered before the panic is registered")
	}
	t.Logf("%v", err)
}

func panicInInit() { panic("bad config") }

func TestLoadPlugin_NoJobs(t *testing.T) {
	path := pluginFile(t, "empty.so")
	_, err := loadPlugin(path, initOnly(func() {}))
	want := "plugin " + path + ": it registered no jobs\na plugin's init, or that of a package it imports, must call jobs.Register"
	if err == nil || err.Error() != want {
		t.Errorf("LoadPlugin = %v\nwant %s", err, want)
	}
}

func TestLoadPlugin_FromPluginInit(t *testing.T) {
	n := newTestNames()
	inner := pluginFile(t, "inner.so")
	var innerErr error
	_, err := loadPlugin(pluginFile(t, "outer.so"), initOnly(func() {
		_, innerErr = loadPlugin(inner, initOnly(func() {}))
		Register(countJob(n.job("plugin_test_outer")))
	}))
	if err != nil {
		t.Fatal(err)
	}
	if want := "plugin " + inner + ": another plugin is loading; LoadPlugin must not be called from a plugin's init"; innerErr == nil || innerErr.Error() != want {
		t.Errorf("nested LoadPlugin = %v, want %s", innerErr, want)
	}
}

// TestLoadPlugin_Concurrent loads a plugin while another one's init is
// running on another goroutine: the second load waits its turn, and each
// plugin owns the job its init registered.
func TestLoadPlugin_Concurrent(t *testing.T) {
	n := newTestNames()
	started, release := make(chan struct{}), make(chan struct{})
	firstErr := make(chan error)
	go func() {
		_, err := loadPlugin(pluginFile(t, "first.so"), initOnly(func() {
			close(started)
			<-release
			Register(countJob(n.job("plugin_test_first")))
		}))
		firstErr <- err
	}()
	<-started
	secondNames := make(chan []string)
	go func() {
		names, err := loadPlugin(pluginFile(t, "second.so"), initOnly(func() {
			Register(countJob(n.job("plugin_test_second")))
		}))
		if err != nil {
			t.Error(err)
		}
		secondNames <- names
	}()
	close(release)
	if err := <-firstErr; err != nil {
		t.Fatal(err)
	}
	if got, want := <-secondNames, []string{n.job("plugin_test_second")}; !slices.Equal(got, want) {
		t.Errorf("second plugin's jobs = %v, want %v", got, want)
	}
}

func TestLoadPlugin_Missing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing.so")
	_, err := loadPlugin(path, func(string) error { t.Error("opened a missing file"); return nil })
	if !errors.Is(err, fs.ErrNotExist) || err.Error() != "plugin "+path+": no such file or directory" {
		t.Errorf("LoadPlugin of a missing file = %v", err)
	}
}

// TestLoadPlugin_OpenErrors turns plugin.Open's messages into LoadPlugin's.
func TestLoadPlugin_OpenErrors(t *testing.T) {
	for _, tt := range []struct {
		name, open, want, hint string
		is                     error
	}{
		{
			name: "Mismatch",
			open: `plugin.Open("DIR/p"): plugin was built with a different version of package github.com/mrengine/mr/jobs`,
			want: "plugin was built with a different version of package github.com/mrengine/mr/jobs",
			hint: "rebuild the plugin with the Go version, the github.com/mrengine/mr version and the build flags of this binary: go version -m ",
			is:   ErrPluginMismatch,
		},
		{
			name: "AlreadyLoaded",
			open: `plugin.Open("DIR/p"): plugin already loaded`,
			want: "plugin already loaded",
			hint: "another file of the same plugin package is loaded already",
		},
		{
			name: "NotELF",
			open: `plugin.Open("DIR/p"): DIR/p.so: invalid ELF header`,
			want: "DIR/p.so: invalid ELF header",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := pluginFile(t, "p.so")
			dir := filepath.Dir(path)
			if real, err := filepath.EvalSymlinks(dir); err == nil {
				dir = real
			}
			_, err := loadPlugin(path, func(string) error {
				return errors.New(strings.ReplaceAll(tt.open, "DIR", dir))
			})
			pe := (*PluginError)(nil)
			if !errors.As(err, &pe) {
				t.Fatalf("LoadPlugin = %v, want a *PluginError", err)
			}
			if got := strings.ReplaceAll(pe.Err.Error(), dir, "DIR"); got != tt.want {
				t.Errorf("Err = %q, want %q", got, tt.want)
			}
			if !strings.Contains(pe.Hint, tt.hint) || (tt.hint == "") != (pe.Hint == "") {
				t.Errorf("Hint = %q, want one containing %q", pe.Hint, tt.hint)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.is)
			}
		})
	}
}

func TestPluginSupport(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		goos string
		cgo  bool
		want string
	}{
		{"linux", true, ""},
		{"darwin", true, ""},
		{"linux", false, "this binary cannot load Go plugins: it was built without cgo (CGO_ENABLED=0), which Go plugins need"},
		{"windows", true, "this binary cannot load Go plugins: Go plugins work on Linux, FreeBSD and macOS only, and this binary is for windows"},
	} {
		hint, err := pluginSupport(tt.goos, tt.cgo)
		if (err == nil) != (hint == "") {
			t.Errorf("pluginSupport(%s, %t) = %v with hint %q", tt.goos, tt.cgo, err, hint)
		}
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tt.want || (err != nil && !errors.Is(err, ErrPluginsUnsupported)) {
			t.Errorf("pluginSupport(%s, %t) = %v, want %q wrapping ErrPluginsUnsupported", tt.goos, tt.cgo, err, tt.want)
		}
	}
}

func TestBuildDiff(t *testing.T) {
	t.Parallel()
	info := func(goVersion, mr, sum string, settings ...string) *debug.BuildInfo {
		bi := &debug.BuildInfo{GoVersion: goVersion, Main: debug.Module{Path: "example.com/myjobs", Version: "(devel)"}}
		bi.Deps = []*debug.Module{
			{Path: "github.com/mrengine/mr", Version: mr, Sum: sum},
			{Path: "golang.org/x/sync", Version: "v0.25.0", Sum: "h1:x"},
		}
		for i := 0; i < len(settings); i += 2 {
			bi.Settings = append(bi.Settings, debug.BuildSetting{Key: settings[i], Value: settings[i+1]})
		}
		return bi
	}
	binary := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Path: "github.com/mrengine/mr", Version: "v0.4.0"},
		Deps:      []*debug.Module{{Path: "golang.org/x/sync", Version: "v0.25.0", Sum: "h1:x"}},
		Settings: []debug.BuildSetting{
			{Key: "-buildmode", Value: "exe"}, {Key: "-race", Value: "true"},
			{Key: "-ldflags", Value: "-s"}, {Key: "vcs.revision", Value: "abc"},
		},
	}
	for _, tt := range []struct {
		name   string
		plugin *debug.BuildInfo
		want   []string
	}{
		{"Same", info("go1.26.8", "v0.4.0", "h1:m", "-buildmode", "plugin", "-race", "true"), nil},
		{"Go", info("go1.25.3", "v0.4.0", "h1:m", "-race", "true"), []string{
			"Go: go1.25.3 in the plugin, go1.26.8 in this binary",
		}},
		{"Module", info("go1.26.8", "v0.3.0", "h1:m", "-race", "true"), []string{
			"github.com/mrengine/mr: v0.3.0 in the plugin, v0.4.0 in this binary",
		}},
		{"Checksum", func() *debug.BuildInfo {
			bi := info("go1.26.8", "v0.4.0", "h1:m", "-race", "true")
			bi.Deps[1].Sum = "h1:y"
			return bi
		}(), []string{"golang.org/x/sync checksum: h1:y in the plugin, h1:x in this binary"}},
		{"Flags", info("go1.26.8", "v0.4.0", "h1:m", "-trimpath", "true", "-gcflags", "-N -l"), []string{
			"-gcflags: -N -l in the plugin, not set in this binary",
			"-race: not set in the plugin, true in this binary",
			"-trimpath: true in the plugin, not set in this binary",
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := buildDiff(tt.plugin, binary); !slices.Equal(got, tt.want) {
				t.Errorf("buildDiff =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}
