package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
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
	generate(t, "--out", a, "--files", "4", "--records", "500", "--dup", "0.05")
	generate(t, "--out", b, "--files", "4", "--records", "500", "--dup", "0.05")
	names, _ := filepath.Glob(filepath.Join(a, "*"))
	if len(names) != 4 {
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
}

// The typed CSV files hold every valid record of the JSON files, in order,
// duplicates included, with the columns of the hand-made tables.
func TestTypedCSV(t *testing.T) {
	dir, csvDir := t.TempDir(), t.TempDir()
	out := generate(t, "--out", dir, "--files", "4", "--records", "400", "--dup", "0.05", "--bad", "0.1", "--typed-csv", csvDir)
	want := map[string][][]string{} // table -> rows from the JSON files
	names, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	sort.Strings(names) // the generator writes them in name order
	var invalid, dups int
	seen := map[string]bool{}
	for _, n := range names {
		x, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string][]map[string]any
		if err := json.Unmarshal(x, &doc); err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		for array, recs := range doc {
			for _, r := range recs {
				var row []string
				var table string
				switch array {
				case "objects_detection_events":
					table = "objects_detection"
					v, ok := r["object_value"].(float64)
					if !ok {
						invalid++
						continue
					}
					det, _ := json.Marshal(r["detections"])
					row = []string{r["vehicle_id"].(string), r["detection_time"].(string), r["object_type"].(string), strconv.Itoa(int(v)), string(det)}
				case "vehicle_status":
					table = "vehicle_status"
					s, ok := r["status"].(string)
					if !ok {
						invalid++
						continue
					}
					row = []string{r["vehicle_id"].(string), r["report_time"].(string), s}
				default:
					t.Fatalf("%s: array %q", n, array)
				}
				if seen[table+row[0]+row[1]] {
					dups++
				}
				seen[table+row[0]+row[1]] = true
				want[table] = append(want[table], row)
			}
		}
	}
	if invalid == 0 || dups == 0 {
		t.Fatalf("%d invalid, %d duplicate records: the test proves nothing", invalid, dups)
	}
	total := 0
	for _, table := range []string{"objects_detection", "vehicle_status"} {
		f, err := os.Open(filepath.Join(csvDir, table+".csv"))
		if err != nil {
			t.Fatal(err)
		}
		rows, err := csv.NewReader(f).ReadAll()
		f.Close()
		if err != nil {
			t.Fatalf("%s.csv: %v", table, err)
		}
		if len(rows) != len(want[table]) {
			t.Fatalf("%s.csv: %d rows, want %d", table, len(rows), len(want[table]))
		}
		for i, row := range rows {
			w := want[table][i]
			if table == "objects_detection" {
				// Compare the detections as JSON, not as text.
				var got, exp any
				if err := json.Unmarshal([]byte(row[4]), &got); err != nil {
					t.Fatalf("%s.csv row %d: detections: %v", table, i+1, err)
				}
				json.Unmarshal([]byte(w[4]), &exp)
				if !reflect.DeepEqual(got, exp) {
					t.Fatalf("%s.csv row %d: detections %s, want %s", table, i+1, row[4], w[4])
				}
				row, w = row[:4], w[:4]
			}
			if !reflect.DeepEqual(row, w) {
				t.Fatalf("%s.csv row %d: %q, want %q", table, i+1, row, w)
			}
		}
		total += len(rows)
	}
	if !strings.Contains(out, "wrote "+strconv.Itoa(total)+" valid records") {
		t.Fatalf("output %q does not count %d rows", out, total)
	}
}
