package plugins

import (
	"testing"
	"time"
)

func TestAppendTime(t *testing.T) {
	for _, ts := range []time.Time{
		time.Date(2020, 9, 13, 12, 26, 40, 500000000, time.UTC),
		time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(1970, 1, 1, 0, 0, 0, 1000, time.UTC),
	} {
		for _, sep := range []byte{'T', ' '} {
			want := ts.Format("2006-01-02" + string(sep) + "15:04:05.000000Z")
			if got := string(AppendTime([]byte("x"), ts, sep)); got != "x"+want {
				t.Errorf("%v, %q: %s, want x%s", ts, sep, got, want)
			}
		}
	}
}
