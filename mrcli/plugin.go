package mrcli

import (
	"errors"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/mrengine/mr/jobs"
)

// pluginFlag is the --plugin flag of the commands that name jobs.
func pluginFlag() cli.Flag {
	return &cli.StringFlag{Name: "plugin", Usage: "Go plugin `FILE.so` whose init registers jobs"}
}

// loadPlugin loads the --plugin of c's command, if it has one, and returns
// its path and the names of its jobs. A plugin that does not load is a
// usage error, which suggests help (e.g. "mr run --help").
func loadPlugin(c *cli.Context, help string) (path string, names []string, err error) {
	path = c.String("plugin")
	if path == "" {
		return "", nil, nil
	}
	names, err = jobs.LoadPlugin(path)
	var pe *jobs.PluginError
	switch {
	case err == nil:
		return path, names, nil
	case !errors.As(err, &pe):
		return "", nil, usagef(help, "--plugin %s: %v", path, err)
	}
	msg := "--" + pe.Error() // "--plugin PATH: …", the flag as the user gave it
	if errors.Is(err, jobs.ErrPluginMismatch) {
		// Both files' Go version, module versions and flags, side by side.
		exe, exeErr := os.Executable()
		if exeErr != nil {
			exe = "MR_BINARY"
		}
		help = "go version -m " + exe + " " + path
	}
	return "", nil, usagef(help, "%s", msg)
}
