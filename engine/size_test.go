package engine_test

import (
	"math"
	"strings"
	"testing"

	"github.com/carpipe/carpipe/engine"
)

func TestParseSize(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
	}{
		{"", 0}, // unset: the caller's default
		{"1", 1},
		{"1048576", 1 << 20},
		{"100B", 100},
		{"512MiB", 512 << 20},
		{"512 MiB", 512 << 20},
		{"2GB", 2e9},
		{"2gb", 2e9},
		{"1.5KiB", 1536},
		{"0.5KiB", 512},
		{"1.25MB", 1250000},
		{"1,000", 1000},
		{"7EiB", 7 << 60},
		{"9223372036854775807", math.MaxInt64},
	} {
		got, err := engine.ParseSize("max_file_size", c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
	for _, in := range []string{
		"0", "0B", "0.0", "0.5", "0.5 B", "1.5", "1.0001KB", "0.0000001KiB",
		"-1", "-1MiB", "NaN", "Inf", "+Inf", "1e9",
		"99999999999TiB", "8EiB", "9223372036854775808", "18446744073709551616", "16EiB",
		"lots", "MiB", "10 bogus", "10MiBs", "12 MiB junk", ".", "1..5KiB", "0x10",
	} {
		got, err := engine.ParseSize("max_record_size", in)
		if err == nil {
			t.Errorf("ParseSize(%q) = %d, nil; want an error", in, got)
			continue
		}
		if msg := err.Error(); !strings.HasPrefix(msg, "max_record_size ") || !strings.Contains(msg, "whole number of bytes") {
			t.Errorf("ParseSize(%q): %q does not name the key and what it wants", in, msg)
		}
	}
}
