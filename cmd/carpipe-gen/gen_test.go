package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func generate(t *testing.T, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	if code := Run(args, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	return out.String()
}

func TestDeterministicAndCounts(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	generate(t, "--out", a, "--files", "4", "--records", "500", "--dup", "0.05", "--csv", filepath.Join(a, "r.csv"))
	generate(t, "--out", b, "--files", "4", "--records", "500", "--dup", "0.05", "--csv", filepath.Join(b, "r.csv"))
	names, _ := filepath.Glob(filepath.Join(a, "*"))
	if len(names) != 5 {
		t.Fatalf("%d files", len(names))
	}
	keys := map[string]bool{}
	total := 0
	for _, n := range names {
		x, _ := os.ReadFile(n)
		y, _ := os.ReadFile(filepath.Join(b, filepath.Base(n)))
		if !bytes.Equal(x, y) {
			t.Fatalf("%s differs between runs with the same seed", filepath.Base(n))
		}
		if strings.HasSuffix(n, ".csv") {
			continue
		}
		var doc map[string][]map[string]any
		if err := json.Unmarshal(x, &doc); err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		for kind, recs := range doc {
			for _, r := range recs {
				total++
				tf := "report_time"
				if kind == "objects_detection_events" {
					tf = "detection_time"
				}
				keys[kind+r["vehicle_id"].(string)+r[tf].(string)] = true
			}
		}
	}
	if total != 2000 {
		t.Fatalf("%d records", total)
	}
	dups := total - len(keys)
	if dups < 50 || dups > 150 { // 5% of 2000, give or take
		t.Fatalf("%d duplicates for --dup 0.05", dups)
	}
	f, _ := os.Open(filepath.Join(a, "r.csv"))
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil || len(rows) != len(keys) {
		t.Fatalf("csv: %d rows, %d unique keys, %v", len(rows), len(keys), err)
	}
}
