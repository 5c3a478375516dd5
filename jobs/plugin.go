package jobs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"plugin"
	"reflect"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
)

var (
	// ErrPluginMismatch is the error, wrapped in a *PluginError, when Go
	// refuses a plugin because a package it shares with the binary was
	// built from another version or with other flags. Its text is the
	// start of Go's own message, which goes on with the package's path.
	ErrPluginMismatch = errors.New("plugin was built with a different version of package")

	// ErrPluginsUnsupported is the error, wrapped in a *PluginError, of
	// LoadPlugin in a binary built without cgo or for an OS without Go
	// plugins.
	ErrPluginsUnsupported = errors.New("this binary cannot load Go plugins")
)

// PluginError is the error of LoadPlugin: what went wrong with the plugin
// file at Path, and what to do about it.
type PluginError struct {
	Path string // the plugin file, as given to LoadPlugin
	Err  error  // what went wrong, without the path
	Hint string // what to do about it, one or more lines; "" if Err says it
}

func (e *PluginError) Error() string {
	msg := "plugin " + e.Path + ": " + e.Err.Error()
	if e.Hint != "" {
		msg += "\n" + e.Hint
	}
	return msg
}

func (e *PluginError) Unwrap() error { return e.Err }

// pluginLoad is one plugin file that LoadPlugin loaded or is loading.
type pluginLoad struct {
	path  string   // as given to LoadPlugin, for messages
	names []string // the jobs its init registered
	errs  []error  // what Register could not register, instead of panicking
	err   error    // the outcome, once loaded
}

// loadMu serializes LoadPlugin, so that mu.load is one plugin at a time.
var loadMu sync.Mutex

// LoadPlugin opens the Go plugin at path, which runs its init functions,
// and returns the names of the jobs they registered, sorted. Any error is
// a *PluginError. See the package documentation for the contract.
func LoadPlugin(path string) ([]string, error) {
	if hint, err := pluginSupport(runtime.GOOS, cgoEnabled); err != nil {
		return nil, &PluginError{Path: path, Err: err, Hint: hint}
	}
	return loadPlugin(path, openPlugin)
}

func openPlugin(path string) error {
	_, err := plugin.Open(path)
	return err
}

// loadPlugin is LoadPlugin with the function that opens the plugin and
// runs its init functions (plugin.Open, or a stand-in in tests).
func loadPlugin(path string, open func(path string) error) ([]string, error) {
	real, err := filepath.Abs(path)
	if err == nil {
		real, err = filepath.EvalSymlinks(real)
	}
	if err != nil {
		if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
			err = pe.Err // the path is the plugin's, which PluginError names
		}
		return nil, &PluginError{Path: path, Err: err}
	}

	// One load at a time: other goroutines wait their turn. A plugin's
	// init that calls LoadPlugin would wait for the load below it, which
	// waits for that init: a deadlock, refused instead.
	if inPluginInit() {
		return nil, &PluginError{Path: path, Err: errors.New("another plugin is loading; LoadPlugin must not be called from a plugin's init")}
	}
	loadMu.Lock()
	defer loadMu.Unlock()
	mu.Lock()
	if prev := mu.plugins[real]; prev != nil {
		// Loaded before: Go does not run a plugin's init twice.
		defer mu.Unlock()
		return slices.Clone(prev.names), prev.err
	}
	load := &pluginLoad{path: path}
	mu.load = load
	mu.Unlock()

	openErr := runPluginInit(open, real)

	mu.Lock()
	defer mu.Unlock()
	mu.load = nil
	mu.plugins[real] = load
	switch {
	case openErr != nil:
		load.err = openError(path, real, openErr)
	case len(load.errs) > 0:
		load.err = &PluginError{Path: path, Err: errors.Join(load.errs...)}
	case len(load.names) == 0:
		load.err = &PluginError{Path: path, Err: errors.New("it registered no jobs"),
			Hint: "a plugin's init, or that of a package it imports, must call jobs.Register"}
	}
	if load.err != nil {
		// All of the plugin's jobs or none: a partly registered plugin
		// would run some of its jobs under names it does not expect.
		for _, name := range load.names {
			delete(mu.jobs, name)
		}
		load.names = nil
	}
	slices.Sort(load.names)
	return slices.Clone(load.names), load.err
}

// runPluginInit calls open(path), which runs the plugin's init functions,
// and returns a panic of theirs as an *initPanic.
func runPluginInit(open func(string) error, path string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &initPanic{value: r, stack: initStack(debug.Stack())}
		}
	}()
	return open(path)
}

// inPluginInit reports whether the calling goroutine is inside
// runPluginInit, that is, in the init of a plugin being loaded. Go has no
// goroutine identity to hold a reentrant lock by, but the goroutine's own
// stack says it.
func inPluginInit() bool {
	return strings.Contains(string(debug.Stack()), "\n"+pluginInitFunc+"(")
}

// initPanic is a panic of a plugin's init functions.
type initPanic struct {
	value any
	stack string // from the panicking function down to the plugin's init
}

func (p *initPanic) Error() string { return fmt.Sprintf("its init panicked: %v", p.value) }

// initStack cuts a goroutine stack (debug.Stack's text, taken while
// panicking) to the frames between the panic and plugin.Open (or
// runPluginInit): the plugin's code and its init.
func initStack(stack []byte) string {
	lines := strings.Split(strings.TrimSpace(string(stack)), "\n")
	start, end := 0, len(lines)
	for i, line := range lines {
		switch {
		case strings.HasPrefix(line, "panic("):
			start = i + 2 // past panic's file:line
		case strings.HasPrefix(line, "plugin.open("), strings.HasPrefix(line, pluginInitFunc+"("):
			end = i
		}
		if end < len(lines) {
			break
		}
	}
	if start >= end {
		return ""
	}
	return strings.Join(lines[start:end], "\n")
}

// pluginInitFunc is the name of runPluginInit in stack frames (the tests
// fail if it is wrong).
var pluginInitFunc = reflect.TypeFor[pluginLoad]().PkgPath() + ".runPluginInit"

// openError turns plugin.Open's error for the file real (given as path)
// into a *PluginError with a hint.
func openError(path, real string, err error) error {
	// plugin.Open's messages read `plugin.Open("NAME"): CAUSE`, where NAME
	// is the path it was given without its .so; PluginError names it.
	if p := (*initPanic)(nil); errors.As(err, &p) {
		return &PluginError{Path: path, Err: p, Hint: p.stack}
	}
	msg := err.Error()
	for _, name := range []string{strings.TrimSuffix(real, ".so"), real} {
		if cause, ok := strings.CutPrefix(msg, `plugin.Open("`+name+`"): `); ok {
			msg = cause
			break
		}
	}
	switch {
	case strings.HasPrefix(msg, ErrPluginMismatch.Error()+" "):
		pkg := strings.TrimPrefix(msg, ErrPluginMismatch.Error()+" ")
		return &PluginError{Path: path, Err: fmt.Errorf("%w %s", ErrPluginMismatch, pkg), Hint: mismatchHint(real)}
	case msg == "plugin already loaded":
		return &PluginError{Path: path, Err: errors.New(msg),
			Hint: "another file of the same plugin package is loaded already: load each plugin once"}
	default:
		return &PluginError{Path: path, Err: errors.New(msg)}
	}
}

// pluginSupport returns why a binary for goos, built with or without cgo,
// cannot load plugins, and what to do instead; nil if it can. The
// conditions are those of package plugin's implementation.
func pluginSupport(goos string, cgo bool) (hint string, err error) {
	const compileIn = "compile the jobs into the binary instead: import their package from its main"
	switch {
	case goos != "linux" && goos != "darwin" && goos != "freebsd":
		return compileIn, fmt.Errorf("%w: Go plugins work on Linux, FreeBSD and macOS only, and this binary is for %s", ErrPluginsUnsupported, goos)
	case !cgo:
		return "use a binary built with CGO_ENABLED=1 (which needs a C compiler), or " + compileIn,
			fmt.Errorf("%w: it was built without cgo (CGO_ENABLED=0), which Go plugins need", ErrPluginsUnsupported)
	}
	return "", nil
}

// executable is this binary's path for hints, or a placeholder.
func executable() string {
	if exe, err := os.Executable(); err == nil {
		return exe
	}
	return "BINARY"
}
