package schema

import (
	"fmt"
	"slices"
)

// oneOf keeps status columns to their documented values without an enum
// type, so adding a value needs no DDL.
func oneOf(values ...string) func(string) error {
	return func(s string) error {
		if !slices.Contains(values, s) {
			return fmt.Errorf("%q is not one of %q", s, values)
		}
		return nil
	}
}
