package jobs

import (
	"context"

	"github.com/mrengine/mr/mapreduce"
)

// ChannelTotals is channel_totals' value: the output's value columns.
type ChannelTotals struct {
	Events int64
	Items  int64
}

// The columns of event_payloads that channel_totals reads, in
// Input.Columns order.
const (
	totalsColChannel = iota
	totalsColItems
)

// ChannelTotalsJob counts the events and sums the items of each channel,
// over event_payloads (see EventPayloads): the second stage of the
// pipeline payload_channels. An event whose payload has no string
// "channel" is in no group, as SQL's WHERE channel IS NOT NULL leaves it
// out; one without integer "items" counts as an event with none.
var ChannelTotalsJob = mapreduce.Job[string, ChannelTotals]{
	Name:        "channel_totals",
	Description: "events and items per channel, over event_payloads",
	Input:       mapreduce.Input{Table: "event_payloads", Cursor: "event_id", Columns: []string{"channel", "items"}},
	Output:      mapreduce.Output{Table: "channel_totals"},
	Key:         mapreduce.Columns[string]("channel"),
	Map: func(_ context.Context, row mapreduce.Row, emit func(string, ChannelTotals)) error {
		if row.Null(totalsColChannel) {
			return nil
		}
		v := ChannelTotals{Events: 1}
		if !row.Null(totalsColItems) {
			v.Items = row.Int64(totalsColItems)
		}
		emit(row.String(totalsColChannel), v)
		return nil
	},
	Combine: func(a, b ChannelTotals) ChannelTotals {
		return ChannelTotals{Events: mapreduce.AddInt64(a.Events, b.Events), Items: mapreduce.AddInt64(a.Items, b.Items)}
	},
	// Counts and sums merge into stored ones.
	Incremental: true,
}

func init() {
	if err := ChannelTotalsJob.Validate(); err != nil {
		panic(err)
	}
	Register(ChannelTotalsJob)
}
