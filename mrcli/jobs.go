package mrcli

import (
	"fmt"
	"slices"
	"strings"
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
with a FROM column that says which jobs are the plugin's; then the
registered pipelines (jobs.RegisterPipeline) with their stages, which
mr run PIPELINE runs in order.`,
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
	if err := w.Flush(); err != nil {
		return err
	}
	pipelines := jobs.Pipelines()
	if len(pipelines) == 0 {
		return nil
	}
	fmt.Fprintln(c.App.Writer)
	w = tabwriter.NewWriter(c.App.Writer, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "PIPELINE\tDESCRIPTION\tSTAGES")
	for _, p := range pipelines {
		fmt.Fprintf(w, "%s\t%s\t%s\n", p.Name, p.Description, strings.Join(p.Stages, " → "))
	}
	return w.Flush()
}
