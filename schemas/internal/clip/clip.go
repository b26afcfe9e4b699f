// Package clip shortens text for messages, which schemas and fastcheck
// both write.
package clip

import "unicode/utf8"

// Max is how many bytes of a value a message shows.
const Max = 60

// Text cuts valid UTF-8 text longer than Max at a character, marking the
// cut with "...".
func Text(s string) string {
	if len(s) <= Max {
		return s
	}
	i := Max - 3
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "..."
}
