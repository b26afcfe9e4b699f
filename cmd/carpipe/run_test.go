package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRunConcurrentSharedKeys loads files that share most of their keys on
// four workers at once: no file may fail (a deadlock is retried), and the
// counts stay exact.
func TestRunConcurrentSharedKeys(t *testing.T) {
	files := t.TempDir()
	const nFiles, perFile, shift = 24, 1500, 100
	for i := 0; i < nFiles; i++ {
		var b strings.Builder
		b.WriteString(`{"vehicle_status": [`)
		for k := 0; k < perFile; k++ {
			if k > 0 {
				b.WriteString(",")
			}
			// Keys in reverse order in odd files, so writers meet them in
			// opposite orders unless the loader sorts them.
			key := i*shift + k
			if i%2 == 1 {
				key = i*shift + perFile - 1 - k
			}
			fmt.Fprintf(&b, `{"vehicle_id": "v%05d", "report_time": "2020-01-01T00:00:00Z", "status": "s"}`, key)
		}
		b.WriteString("]}")
		os.WriteFile(filepath.Join(files, fmt.Sprintf("vehicles_status_%d.json", 1600000000+i)), []byte(b.String()), 0o644)
	}
	unique := (nFiles-1)*shift + perFile
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			p := newPipe(t, b, files, "../../schemas", "keep", "keep")
			code, out, errs := carpipe(t, "run", "-c", p.config, "--workers", "4")
			wantCode(t, code, exitOK, out, errs)
			wantContains(t, out, fmt.Sprintf("%d processed, 0 failed", nFiles),
				fmt.Sprintf("%d inserted, %d duplicate", unique, nFiles*perFile-unique))
			if n := stored(t, p.db, ""); n != unique {
				t.Fatalf("%d records, want %d", n, unique)
			}
			// Sorted merges never deadlock: nothing had to be retried.
			if strings.Contains(errs, "trying again") {
				t.Errorf("writers conflicted:\n%s", errs)
			}
		})
	}
}
