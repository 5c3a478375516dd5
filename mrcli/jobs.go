package mrcli

import (
	"fmt"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/mrengine/mr/jobs"
)

func jobsCommand() *cli.Command {
	return &cli.Command{
		Name:  "jobs",
		Usage: "list the registered jobs",
		Description: `Lists the jobs this binary can run: the built-in ones and those that
packages imported by its main (or a --plugin) register with jobs.Register.`,
		Action: action(listJobs),
	}
}

func listJobs(c *cli.Context, args []string) error {
	if len(args) > 0 {
		return usagef("mr jobs", "mr jobs takes no arguments, got %q", args)
	}
	w := tabwriter.NewWriter(c.App.Writer, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tDESCRIPTION\tINPUT\tOUTPUT")
	for _, spec := range jobs.List() {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", spec.Name, spec.Description, spec.Input.Table, spec.Output.Name)
	}
	return w.Flush()
}
