package mrcli_test

import (
	"context"
	"fmt"
	"os"

	"github.com/mrengine/mr/mrcli"
)

// Run is the whole command line: Main calls it with os.Args and exits with
// the code it returns.
func ExampleRun() {
	code := mrcli.Run(context.Background(), []string{"mr", "jobs"}, os.Stdout, os.Stderr)
	fmt.Println("exit code", code)
	// Output:
	// NAME            DESCRIPTION                                                           INPUT           OUTPUT
	// channel_totals  events and items per channel, over event_payloads                     event_payloads  channel_totals
	// daily_rollup    events and total cents per account, UTC day and category              events          daily_rollup
	// event_payloads  each event's JSON payload as a row: its key count, channel and items  events          event_payloads
	//
	// PIPELINE          DESCRIPTION                                                                   STAGES
	// payload_channels  events and items per channel of their JSON payload, by way of event_payloads  event_payloads → channel_totals
	// exit code 0
}

func ExampleRun_usageError() {
	code := mrcli.Run(context.Background(), []string{"mr", "run", "daily_rollup", "--source", "events.db", "--partitions", "0"}, os.Stdout, os.Stdout)
	fmt.Println("exit code", code)
	// Output:
	// mr: --partitions must be between 1 and 100000, got 0
	// Try: mr run --help
	// exit code 2
}
