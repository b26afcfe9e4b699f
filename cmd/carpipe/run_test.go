package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestRunCleanThenNothing(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			p := newPipe(t, b, "../../testdata/sample", "../../schemas", "move:processed", "move:failed")
			code, out, errs := carpipe(t, "run", "-c", p.config)
			wantCode(t, code, exitOK, out, errs)
			wantContains(t, out, "6 processed, 0 failed, 0 skipped, 0 unmatched", "60 inserted, 0 duplicate, 0 rejected")
			if n := p.count(t, "SELECT count(*) FROM records"); n != 60 {
				t.Fatalf("%d records stored", n)
			}
			if n := p.count(t, "SELECT count(*) FROM files WHERE status = 'processed' AND records_inserted = 10 AND sha256 <> ''"); n != 6 {
				t.Fatalf("%d ledger rows", n)
			}
			for _, f := range p.ls(t) {
				if !strings.HasPrefix(f, "processed/") {
					t.Errorf("%s was not moved", f)
				}
			}
			// The same files put back: the ledger knows them.
			copyDir(t, "../../testdata/sample", p.inbox)
			code, out, errs = carpipe(t, "run", "-c", p.config)
			wantCode(t, code, exitOK, out, errs)
			wantContains(t, out, "0 processed, 0 failed, 6 skipped", "0 inserted, 0 duplicate")
			if n := p.count(t, "SELECT count(*) FROM records"); n != 60 {
				t.Fatalf("second run changed the records: %d", n)
			}
			if n := p.count(t, "SELECT count(*) FROM runs WHERE status = 'ok' AND finished_at IS NOT NULL"); n != 2 {
				t.Fatalf("%d finished runs", n)
			}
			// Both copies moved, the second under a new name.
			if got := len(p.ls(t)); got != 12 {
				t.Fatalf("%d files after the second run: %v", got, p.ls(t))
			}
		})
	}
}

func TestRunDuplicates(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			p := newPipe(t, b, "../../testdata/run/duplicates", "../../schemas", "keep", "keep")
			code, out, errs := carpipe(t, "run", "-c", p.config, "--workers", "1")
			wantCode(t, code, exitOK, out, errs)
			wantContains(t, out, "2 processed", "3 inserted, 3 duplicate, 0 rejected")
			rows, err := p.db.Query("SELECT record_key FROM records ORDER BY record_key")
			if err != nil {
				t.Fatal(err)
			}
			var keys []string
			for rows.Next() {
				var k string
				rows.Scan(&k)
				keys = append(keys, k)
			}
			want := []string{
				`["a","2020-01-01T14:05:11.000000Z"]`,
				`["b","2020-01-01T14:05:11.000000Z"]`,
				`["c","2020-01-01T14:05:11.000001Z"]`,
			}
			if !slices.Equal(keys, want) {
				t.Fatalf("keys %v, want %v", keys, want)
			}
			// A file with the same name but new content loads; its known
			// records are duplicates.
			name := filepath.Join(p.inbox, "vehicles_status_1600000100.json")
			os.WriteFile(name, []byte(`{"vehicle_status":[{"vehicle_id":"a","report_time":"2020-01-01T14:05:11Z","status":"x"},{"vehicle_id":"d","report_time":"2020-01-01T14:05:11+00:00","status":"x"}]}`), 0o644)
			code, out, errs = carpipe(t, "run", "-c", p.config)
			wantCode(t, code, exitOK, out, errs)
			wantContains(t, out, "1 processed, 0 failed, 1 skipped", "1 inserted, 1 duplicate")
			if n := p.count(t, "SELECT count(*) FROM files WHERE path = 'vehicles_status_1600000100.json'"); n != 2 {
				t.Fatalf("%d ledger rows for the rewritten file", n)
			}
		})
	}
}

func TestRunBadInput(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			p := newPipe(t, b, "../../testdata/run/bad", "../../schemas", "move:processed", "move:failed")
			code, out, errs := carpipe(t, "run", "-c", p.config)
			wantCode(t, code, exitPartial, out, errs)
			wantContains(t, out, "1 processed, 4 failed, 0 skipped, 1 unmatched", "2 inserted")
			want := []string{
				"failed/vehicles_status_1600000001.json",
				"failed/vehicles_status_1600000002.json",
				"failed/vehicles_status_1600000003.json",
				"failed/vehicles_status_1600000004.json",
				"notes.txt",
				"processed/vehicles_status_1600000005.json",
			}
			if got := p.ls(t); !slices.Equal(got, want) {
				t.Fatalf("files %v, want %v", got, want)
			}
			// Failed files keep their bytes.
			for _, f := range want[:4] {
				orig, _ := os.ReadFile(filepath.Join("../../testdata/run/bad", filepath.Base(f)))
				got, _ := os.ReadFile(filepath.Join(p.inbox, f))
				if !bytes.Equal(orig, got) {
					t.Errorf("%s changed", f)
				}
			}
			reasons := map[string]string{}
			rows, err := p.db.Query("SELECT path, error FROM files WHERE status = 'failed'")
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var path, reason string
				rows.Scan(&path, &reason)
				reasons[path] = reason
			}
			for path, want := range map[string]string{
				"vehicles_status_1600000001.json": "unexpected end of file",
				"vehicles_status_1600000002.json": `2 invalid record(s): record 1 /vehicle_status/1/report_time: "report_time": does not match format "date-time"`,
				"vehicles_status_1600000003.json": "empty file",
				"vehicles_status_1600000004.json": "invalid UTF-8",
			} {
				if !strings.Contains(reasons[path], want) || strings.Contains(reasons[path], "\n") {
					t.Errorf("%s: reason %q, want a line with %q", path, reasons[path], want)
				}
			}
			wantContains(t, errs, "file failed", "vehicles_status_1600000002.json")
			if n := p.count(t, "SELECT count(*) FROM records"); n != 2 {
				t.Fatalf("%d records: a rejected file leaked rows", n)
			}
		})
	}
}

func TestRunSkipRecord(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			p := newPipe(t, b, "../../testdata/run/skip/inbox", "../../testdata/run/skip/schemas", "move:done", "move:failed")
			code, out, errs := carpipe(t, "run", "-c", p.config)
			wantCode(t, code, exitPartial, out, errs)
			wantContains(t, out, "1 processed, 0 failed", "1 inserted, 0 duplicate, 2 rejected")
			if got := p.ls(t); !slices.Equal(got, []string{"done/vehicles_status_1600000002.json"}) {
				t.Fatalf("files %v", got)
			}
			rows, err := p.db.Query("SELECT record_index, errors, payload FROM rejects ORDER BY record_index")
			if err != nil {
				t.Fatal(err)
			}
			var idx []int
			for rows.Next() {
				var i int
				var errJSON, payload string
				if err := rows.Scan(&i, &errJSON, &payload); err != nil {
					t.Fatal(err)
				}
				var fes []struct{ Pointer, Message string }
				if err := json.Unmarshal([]byte(errJSON), &fes); err != nil || len(fes) == 0 {
					t.Fatalf("errors column %q: %v", errJSON, err)
				}
				if i == 2 && (fes[0].Pointer != "/status" || !strings.Contains(fes[0].Message, "expected string, got number 3")) {
					t.Errorf("record 2 errors %+v", fes)
				}
				if !strings.Contains(payload, `"vehicle_id": "`) {
					t.Errorf("raw payload %q", payload)
				}
				idx = append(idx, i)
			}
			if !slices.Equal(idx, []int{1, 2}) {
				t.Fatalf("rejected records %v", idx)
			}
			if n := p.count(t, "SELECT count(*) FROM files WHERE status = 'processed' AND records_total = 3 AND records_rejected = 2"); n != 1 {
				t.Fatal("ledger counts wrong")
			}
		})
	}
}

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
			if n := p.count(t, "SELECT count(*) FROM records"); n != unique {
				t.Fatalf("%d records, want %d", n, unique)
			}
			// Sorted merges never deadlock: nothing had to be retried.
			if strings.Contains(errs, "trying again") {
				t.Errorf("writers conflicted:\n%s", errs)
			}
		})
	}
}
