package fastcheck

import (
	"math/big"
	"time"

	"github.com/xeipuuv/gojsonschema"
)

// formats adds "format": gojsonschema checks strings, and numbers as a
// *big.Rat, against its FormatCheckers; an unknown format passes. The
// package registers no checker of its own: gojsonschema must judge as it
// does anywhere else.
func formats(n *node, m map[string]any) error {
	v, ok := m["format"]
	if !ok {
		return nil
	}
	name, ok := v.(string)
	if !ok {
		return errUnsupported
	}
	if name == "date-time" && stockDateTimeInChain() {
		// Called directly, it skips the chain's lock and map.
		n.strFormat = DateTime
		n.numFormat = func(*big.Rat) bool { return false }
		return nil
	}
	n.strFormat = func(s string) bool { return gojsonschema.FormatCheckers.IsFormat(name, s) }
	n.numFormat = func(r *big.Rat) bool { return gojsonschema.FormatCheckers.IsFormat(name, r) }
	return nil
}

// dateTimeLayouts are those gojsonschema v1.2.0's DateTimeFormatChecker
// tries, the common one first: a string passes if any layout parses it,
// so the order does not change the verdict.
var dateTimeLayouts = []string{
	time.RFC3339,
	time.RFC3339Nano,
	"15:04:05",
	"15:04:05Z07:00",
	"2006-01-02",
}

// DateTime is gojsonschema's stock "date-time" check of a string: an RFC
// 3339 date-time, but also a bare date or time.
func DateTime(s string) bool {
	for _, layout := range dateTimeLayouts {
		if _, err := time.Parse(layout, s); err == nil {
			return true
		}
	}
	return false
}

// stockDateTimeInChain reports whether gojsonschema's "date-time" checker
// judges like DateTime, as the stock one does, on values where layouts and
// types part; another package could have replaced it.
func stockDateTimeInChain() bool {
	probes := []any{"2020-01-01T00:00:00Z", "2020-01-01T00:00:00.5+01:00", "2020-01-01", "12:00:00", "12:00:00Z",
		"2020-01-01T00:00:00", "2020-13-01", "", "x", new(big.Rat).SetInt64(1600000000), true}
	for _, p := range probes {
		s, isStr := p.(string)
		if gojsonschema.FormatCheckers.IsFormat("date-time", p) != (isStr && DateTime(s)) {
			return false
		}
	}
	return true
}
