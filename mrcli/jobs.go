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
--plugin those of a Go plugin (built with go build -buildmode=plugin).
FROM says where each job comes from.`,
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
	fmt.Fprintln(w, "NAME\tDESCRIPTION\tINPUT\tOUTPUT\tFROM")
	for _, spec := range jobs.List() {
		from := "built in"
		if slices.Contains(names, spec.Name) {
			from = plugin
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", spec.Name, spec.Description, spec.Input.Table, spec.Output.Name, from)
	}
	return w.Flush()
}
