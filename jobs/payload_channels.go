package jobs

// PayloadChannels is the built-in pipeline event_payloads → channel_totals:
// each event's payload parsed into a row of event_payloads, then those
// rows totalled per channel into channel_totals.
var PayloadChannels = Pipeline{
	Name:        "payload_channels",
	Description: "events and items per channel of their JSON payload, by way of event_payloads",
	Stages:      []string{EventPayloads.Name, ChannelTotalsJob.Name},
}

// init registers PayloadChannels after its stages: the go tool runs the
// init functions of a package's files in the order of their names, and
// this file's comes after channel_totals.go and event_payloads.go.
func init() { RegisterPipeline(PayloadChannels) }
