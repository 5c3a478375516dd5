package mrcli

import (
	"fmt"
	"slices"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/mrengine/mr/jobs"
)

func jobsCommand() *cli.Command {
	return &cli.Command{
		Name:  "jobs",
		Usage: "list the registered jobs",
		Description: `Lists the jobs this binary can run: the built-in ones, those that
packages imported by its main register with jobs.Register, and with
--plugin those of a Go plugin (built with go build -buildmode=plugin),
with a FROM column that says which jobs are the plugin's.`,
		Flags:  []cli.Flag{pluginFlag()},
		Action: action(listJobs),
	}
}

func listJobs(c *cli.Context, args []string) error {
	if len(args) > 0 {
		return usagef("mr jobs", "mr jobs takes no arguments, got %q", args)
	}
	plugin, names, err := loadPlugin(c, "mr jobs --help")
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(c.App.Writer, 0, 0, 2, ' ', 0)
	fmt.Fprint(w, "NAME\tDESCRIPTION\tINPUT\tOUTPUT")
	if plugin != "" {
		fmt.Fprint(w, "\tFROM")
	}
	fmt.Fprintln(w)
	for _, spec := range jobs.List() {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s", spec.Name, spec.Description, spec.Input.Table, spec.Output.Name)
		switch {
		case plugin == "":
		case slices.Contains(names, spec.Name):
			fmt.Fprintf(w, "\t%s", plugin)
		default:
			fmt.Fprint(w, "\tbuilt in")
		}
		fmt.Fprintln(w)
	}
	return w.Flush()
}
