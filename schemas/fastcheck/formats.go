package fastcheck

import (
	"math/big"
	"time"

	"github.com/xeipuuv/gojsonschema"
)

// formats adds "format": gojsonschema checks strings, and numbers as a
// *big.Rat, against FormatCheckers; an unknown format passes.
func formats(n *node, m map[string]any) error {
	v, ok := m["format"]
	if !ok {
		return nil
	}
	name, ok := v.(string)
	if !ok {
		return errUnsupported
	}
	if name == "date-time" {
		// Ours, registered in init: calling it skips the chain's lock, and
		// it passes anything but strings.
		n.strFormat = func(s string) bool { return dateTime{}.IsFormat(s) }
		return nil
	}
	n.strFormat = func(s string) bool { return gojsonschema.FormatCheckers.IsFormat(name, s) }
	n.numFormat = func(r *big.Rat) bool { return gojsonschema.FormatCheckers.IsFormat(name, r) }
	return nil
}

// dateTime is JSON Schema's "date-time": RFC 3339 section 5.6 only.
// gojsonschema's own checker also takes a bare date or time, which is not a
// date-time, and costs five parses where one does.
type dateTime struct{}

func (dateTime) IsFormat(v any) bool {
	s, ok := v.(string)
	if !ok {
		return true // formats apply to strings only
	}
	_, err := time.Parse(time.RFC3339, s)
	return err == nil
}

// Registered here, next to the shortcut in formats that is exact only
// while the chain's "date-time" is dateTime.
func init() {
	gojsonschema.FormatCheckers.Add("date-time", dateTime{})
}
