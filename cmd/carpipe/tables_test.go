package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// sampleRecords reads the records of the sample files of one type.
func sampleRecords(t *testing.T, prefix, field string) []map[string]any {
	t.Helper()
	names, _ := filepath.Glob("../../testdata/sample/" + prefix + "_*.json")
	var out []map[string]any
	for _, n := range names {
		data, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string][]map[string]any
		if err := json.Unmarshal(data, &doc); err != nil {
			t.Fatal(err)
		}
		out = append(out, doc[field]...)
	}
	if len(out) == 0 {
		t.Fatalf("no sample records of %s", prefix)
	}
	return out
}

func sameJSON(t *testing.T, got, want any) bool {
	t.Helper()
	if b, ok := got.([]byte); ok {
		got = string(b)
	}
	var g any
	if err := json.Unmarshal([]byte(got.(string)), &g); err != nil {
		t.Fatalf("not JSON: %q", got)
	}
	w, _ := json.Marshal(want)
	var wv any
	json.Unmarshal(w, &wv)
	return reflect.DeepEqual(g, wv)
}

// instant reads a timestamp column: a time on PostgreSQL, text that
// sorts as time on SQLite.
func instant(t *testing.T, v any) time.Time {
	t.Helper()
	switch v := v.(type) {
	case time.Time:
		return v
	case []byte:
		return instant(t, string(v))
	case string:
		ts, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			t.Fatalf("timestamp column %q: %v", v, err)
		}
		return ts
	}
	t.Fatalf("timestamp column holds a %T", v)
	return time.Time{}
}

// TestTablesSample: the sample files land in one table per file type, a
// column per property, and the first run creates the tables, the next
// leaves them alone.
func TestTablesSample(t *testing.T) {
	status := sampleRecords(t, "vehicles_status", "vehicle_status")
	detect := sampleRecords(t, "objects_detection", "objects_detection_events")
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			p := newPipe(t, b, "../../testdata/sample", "../../schemas", "keep", "keep")
			code, out, errs := carpipe(t, "run", "-c", p.config)
			wantCode(t, code, exitOK, out, errs)
			wantContains(t, errs, `msg="table created" file_type=objects_detection table=objects_detection`,
				`msg="table created" file_type=vehicles_status table=vehicles_status`)

			rows, err := p.db.Query(`SELECT vehicle_id, report_time, status, _event_time, _file_id FROM vehicles_status`)
			if err != nil {
				t.Fatal(err)
			}
			if b.name == "postgres" {
				types, _ := rows.ColumnTypes()
				var got []string
				for _, c := range types {
					got = append(got, c.DatabaseTypeName())
				}
				if want := []string{"TEXT", "TIMESTAMPTZ", "TEXT", "TIMESTAMPTZ", "INT8"}; !slices.Equal(got, want) {
					t.Errorf("column types %v, want %v", got, want)
				}
			}
			n := 0
			for rows.Next() {
				var vehicle, state string
				var report, event any
				var file int64
				if err := rows.Scan(&vehicle, &report, &state, &event, &file); err != nil {
					t.Fatal(err)
				}
				n++
				rt := instant(t, report)
				var want map[string]any
				for _, r := range status {
					w, _ := time.Parse(time.RFC3339, r["report_time"].(string))
					if r["vehicle_id"] == vehicle && w.Equal(rt) {
						want = r
					}
				}
				switch {
				case want == nil:
					t.Errorf("row %s %v is in no sample file", vehicle, report)
				case state != want["status"]:
					t.Errorf("%s %v: status %q, want %q", vehicle, report, state, want["status"])
				case !instant(t, event).Equal(rt) || file <= 0:
					t.Errorf("%s: _event_time %v, _file_id %d", vehicle, event, file)
				}
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			if n != len(status) {
				t.Errorf("%d rows in vehicles_status, want %d", n, len(status))
			}

			rows, err = p.db.Query(`SELECT vehicle_id, detection_time, object_type, object_value, detections FROM objects_detection`)
			if err != nil {
				t.Fatal(err)
			}
			n = 0
			for rows.Next() {
				var vehicle, kind string
				var when, detections any
				var value int64
				if err := rows.Scan(&vehicle, &when, &kind, &value, &detections); err != nil {
					t.Fatal(err)
				}
				n++
				found := false
				for _, r := range detect {
					w, _ := time.Parse(time.RFC3339, r["detection_time"].(string))
					if r["vehicle_id"] == vehicle && w.Equal(instant(t, when)) {
						found = true
						if kind != r["object_type"] || float64(value) != r["object_value"] || !sameJSON(t, detections, r["detections"]) {
							t.Errorf("%s %v: got %q %d %v, want %v", vehicle, when, kind, value, detections, r)
						}
					}
				}
				if !found {
					t.Errorf("row %s %v is in no sample file", vehicle, when)
				}
			}
			if n != len(detect) {
				t.Errorf("%d rows in objects_detection, want %d", n, len(detect))
			}

			// Unchanged schemas leave the tables alone.
			code, out, errs = carpipe(t, "run", "-c", p.config)
			wantCode(t, code, exitOK, out, errs)
			if strings.Contains(errs, "table created") || strings.Contains(errs, "column added") {
				t.Errorf("unchanged schemas changed a table:\n%s", errs)
			}
		})
	}
}

// TestSchemasSQL: `schemas --sql` prints the tables' DDL, without a
// database, for either dialect.
func TestSchemasSQL(t *testing.T) {
	create := regexp.MustCompile(`(?i)create table [^(\n]*\bvehicles_status\b`)
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			p := newPipe(t, b, "../../testdata/sample", "../../schemas", "keep", "keep")
			code, out, errs := carpipe(t, "schemas", "-c", p.config, "--sql")
			wantCode(t, code, exitOK, out, errs)
			wantContains(t, out, "-- Tables of the file types for "+b.name)
			if !create.MatchString(out) || !strings.Contains(strings.ToLower(out), "unique") {
				t.Errorf("no CREATE TABLE of vehicles_status with a unique index:\n%s", out)
			}
		})
	}
	code, out, errs := carpipe(t, "schemas", "--schemas", "../../schemas", "--sql", "--dialect", "sqlite")
	wantCode(t, code, exitOK, out, errs)
	wantContains(t, out, "for sqlite")
	code, out, errs = carpipe(t, "schemas", "--schemas", "../../schemas", "--sql", "--dialect", "oracle")
	wantCode(t, code, exitUsage, out, errs)
	code, out, errs = carpipe(t, "schemas", "--schemas", "../../schemas", "--dialect", "sqlite")
	wantCode(t, code, exitUsage, out, errs)
	code, out, errs = carpipe(t, "schemas", "--schemas", "../../schemas")
	wantCode(t, code, exitOK, out, errs)
	wantContains(t, out, "TYPE", "vehicles_status")
}
