package jobs

import (
	"debug/buildinfo"
	"fmt"
	"maps"
	"reflect"
	"runtime/debug"
	"slices"
	"strings"
)

// mrModule is the path of this module, whose version a plugin must share.
var mrModule = strings.TrimSuffix(reflect.TypeFor[pluginLoad]().PkgPath(), "/jobs")

// mismatchHint says how the plugin file at path and this binary were built
// differently, as far as their build information shows, and what to do.
func mismatchHint(path string) string {
	var b strings.Builder
	self, ok := debug.ReadBuildInfo()
	plug, err := buildinfo.ReadFile(path)
	if ok && err == nil {
		for _, d := range buildDiff(plug, self) {
			b.WriteString("  " + d + "\n")
		}
	}
	fmt.Fprintf(&b, "rebuild the plugin with the Go version, the %s version and the build flags of this binary: go version -m %s shows them", mrModule, executable())
	return b.String()
}

// ignoredSettings are build settings that do not change the packages a
// plugin shares with its binary, and -cover, which instruments only the
// packages it names and would hide the real difference.
var ignoredSettings = []string{"-buildmode", "-compiler", "-ldflags", "-cover", "CGO_LDFLAGS", "DefaultGODEBUG"}

// buildDiff lists how plugin and binary were built differently: the Go
// version, the versions of the modules both hold, and the build settings
// that decide how packages compile.
func buildDiff(plugin, binary *debug.BuildInfo) []string {
	var diff []string
	differ := func(what, inPlugin, inBinary string) {
		if inPlugin != inBinary {
			diff = append(diff, fmt.Sprintf("%s: %s in the plugin, %s in this binary", what, inPlugin, inBinary))
		}
	}
	differ("Go", plugin.GoVersion, binary.GoVersion)

	pmods, bmods := modules(plugin), modules(binary)
	for _, path := range slices.Sorted(maps.Keys(pmods)) {
		pm, bm := pmods[path], bmods[path]
		switch {
		case bm == nil:
		case pm.Path != bm.Path || pm.Version != bm.Version:
			differ(path, moduleVersion(path, pm), moduleVersion(path, bm))
		case pm.Sum != "" && bm.Sum != "": // the same version, other contents?
			differ(path+" checksum", pm.Sum, bm.Sum)
		}
	}

	pset, bset := settings(plugin), settings(binary)
	for k := range bset {
		if _, ok := pset[k]; !ok {
			pset[k] = ""
		}
	}
	for _, k := range slices.Sorted(maps.Keys(pset)) {
		if slices.Contains(ignoredSettings, k) || strings.HasPrefix(k, "vcs") {
			continue
		}
		differ(k, orUnset(pset[k]), orUnset(bset[k]))
	}
	return diff
}

// modules maps the path of each module in info to the module that
// provided it: itself, or its replacement.
func modules(info *debug.BuildInfo) map[string]*debug.Module {
	mods := map[string]*debug.Module{}
	for _, m := range append([]*debug.Module{&info.Main}, info.Deps...) {
		if m.Path == "" {
			continue
		}
		mods[m.Path] = m
		if m.Replace != nil {
			mods[m.Path] = m.Replace
		}
	}
	return mods
}

// moduleVersion is m's version, naming m if it replaces path.
func moduleVersion(path string, m *debug.Module) string {
	if m.Path != path {
		return m.Path + " " + m.Version
	}
	return m.Version
}

func settings(info *debug.BuildInfo) map[string]string {
	m := map[string]string{}
	for _, s := range info.Settings {
		m[s.Key] = s.Value
	}
	return m
}

func orUnset(v string) string {
	if v == "" {
		return "not set"
	}
	return v
}
