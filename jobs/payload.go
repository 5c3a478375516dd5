package jobs

import (
	"encoding/json"
	"errors"

	"github.com/tidwall/gjson"
)

var errPayloadNotObject = errors.New("payload is not a JSON object")

// IsJSONObject reports whether p parses as a JSON object: its first
// non-space byte opens one, and it is valid JSON. It is daily_rollup's
// rule for a good payload, and the rule of the jobs that share its rows.
//
// It accepts exactly what encoding/json.Valid accepts, at about 3.4 times
// the speed and with no allocation, through gjson's validator (linked in
// already, by River). That validator recurses once per nesting level and
// sets no limit, so a payload of a few megabytes of "[" would overflow the
// stack and kill the process, on every resume. A payload of at most
// shortPayload bytes cannot nest deeper than encoding/json allows (every
// level takes two bytes); a longer one goes to encoding/json, which stops
// at that depth.
func IsJSONObject(p []byte) bool {
	i := 0
	for i < len(p) && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\n') {
		i++
	}
	if i == len(p) || p[i] != '{' {
		return false
	}
	if len(p) <= shortPayload {
		return gjson.ValidBytes(p)
	}
	return json.Valid(p)
}

// shortPayload is the longest payload IsJSONObject hands to gjson: twice
// encoding/json's nesting limit (maxNestingDepth, 10,000 levels).
const shortPayload = 2 * 10_000
