package main

import (
	"database/sql"
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
	var g any
	if err := json.Unmarshal([]byte(got.(string)), &g); err != nil {
		t.Fatalf("not JSON: %q", got)
	}
	w, _ := json.Marshal(want)
	var wv any
	json.Unmarshal(w, &wv)
	return reflect.DeepEqual(g, wv)
}

// instant reads a view's timestamp column: a time on Postgres, the text as
// stored on SQLite.
func instant(t *testing.T, b backend, v any) time.Time {
	t.Helper()
	if b.name == "postgres" {
		return v.(time.Time)
	}
	ts, err := time.Parse(time.RFC3339Nano, v.(string))
	if err != nil {
		t.Fatalf("timestamp column %q: %v", v, err)
	}
	return ts
}

func TestViewsSample(t *testing.T) {
	status := sampleRecords(t, "vehicles_status", "vehicle_status")
	detect := sampleRecords(t, "objects_detection", "objects_detection_events")
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			p := newPipe(t, b, "../../testdata/sample", "../../schemas", "keep", "keep")
			code, out, errs := carpipe(t, "run", "-c", p.config)
			wantCode(t, code, exitOK, out, errs)
			wantContains(t, errs, `msg="view created or replaced" view=objects_detection`, `view=vehicles_status`)

			rows, err := p.db.Query(`SELECT vehicle_id, report_time, status, event_time, record_id, file_id FROM vehicles_status`)
			if err != nil {
				t.Fatal(err)
			}
			if b.name == "postgres" {
				types, _ := rows.ColumnTypes()
				var got []string
				for _, c := range types {
					got = append(got, c.DatabaseTypeName())
				}
				if want := []string{"TEXT", "TIMESTAMPTZ", "TEXT", "TIMESTAMPTZ", "INT8", "INT8"}; !slices.Equal(got, want) {
					t.Errorf("column types %v, want %v", got, want)
				}
			}
			byKey := map[string]map[string]any{}
			for _, r := range status {
				byKey[r["vehicle_id"].(string)+" "+r["report_time"].(string)] = r
			}
			n := 0
			for rows.Next() {
				var vehicle, state string
				var report any
				var event time.Time
				var id, file int64
				if err := rows.Scan(&vehicle, &report, &state, &event, &id, &file); err != nil {
					t.Fatal(err)
				}
				n++
				rt := instant(t, b, report)
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
				case !event.Equal(rt) || id <= 0 || file <= 0:
					t.Errorf("%s: event_time %v, record %d, file %d", vehicle, event, id, file)
				}
				if b.name == "sqlite" && report.(string) != want["report_time"] {
					t.Errorf("SQLite keeps the text as stored: %q, want %q", report, want["report_time"])
				}
			}
			if n != len(byKey) || n != 30 {
				t.Errorf("%d rows in vehicles_status, want %d", n, len(byKey))
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
				if d, ok := detections.([]byte); ok {
					detections = string(d)
				}
				found := false
				for _, r := range detect {
					w, _ := time.Parse(time.RFC3339, r["detection_time"].(string))
					if r["vehicle_id"] == vehicle && w.Equal(instant(t, b, when)) {
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

			// The views' common query is served by an index.
			q := "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name IN ('records_file_type_event_time', 'records_file_type_record_key')"
			if b.name == "postgres" {
				q = "SELECT count(*) FROM pg_indexes WHERE indexname IN ('records_file_type_event_time', 'records_file_type_record_key')"
			}
			if got := p.count(t, q); got != 2 {
				t.Errorf("%d of the 2 records indexes exist", got)
			}

			// Unchanged schemas leave the views alone.
			code, out, errs = carpipe(t, "run", "-c", p.config)
			wantCode(t, code, exitOK, out, errs)
			if strings.Contains(errs, "view created or replaced") {
				t.Errorf("an unchanged view was replaced:\n%s", errs)
			}
		})
	}
}

// TestViewsTypes covers every column type and the naming rule.
func TestViewsTypes(t *testing.T) {
	wantCols := []string{"record_id", "file_id", "event_time", "created_at",
		"_2nd_driver", "speed_km_h_2", "ended_at", "km", "note", "paid", "quote_d", "record_id_",
		"route", "select", "speed_km_h", "stops", "tags", "trip_id"}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			p := newPipe(t, b, "../../testdata/views/files", "../../testdata/views/schemas", "keep", "keep")
			code, out, errs := carpipe(t, "run", "-c", p.config)
			wantCode(t, code, exitOK, out, errs)
			rows, err := p.db.Query(`SELECT * FROM trip_summary ORDER BY trip_id`)
			if err != nil {
				t.Fatal(err)
			}
			cols, _ := rows.Columns()
			if !slices.Equal(cols, wantCols) {
				t.Fatalf("columns %v\nwant %v", cols, wantCols)
			}
			type trip struct {
				id, driver, rid, sel, quoted sql.NullString
				ended                        any
				km, speed                    sql.NullFloat64
				stops, speedInt              sql.NullInt64
				paid                         sql.NullBool
				route, tags, note            any
				recordID, fileID             int64
				eventTime, createdAt         time.Time
			}
			var got []trip
			for rows.Next() {
				var r trip
				err := rows.Scan(&r.recordID, &r.fileID, &r.eventTime, &r.createdAt, &r.driver, &r.speed, &r.ended,
					&r.km, &r.note, &r.paid, &r.quoted, &r.rid, &r.route, &r.sel, &r.speedInt, &r.stops, &r.tags, &r.id)
				if err != nil {
					t.Fatal(err)
				}
				for _, v := range []*any{&r.route, &r.tags, &r.note} {
					if bs, ok := (*v).([]byte); ok {
						*v = string(bs)
					}
				}
				got = append(got, r)
			}
			if len(got) != 3 {
				t.Fatalf("%d rows", len(got))
			}
			str := func(s string) sql.NullString { return sql.NullString{String: s, Valid: true} }
			t1, t2, t3 := got[0], got[1], got[2]
			want1 := time.Date(2020, 9, 13, 10, 0, 0, 0, time.UTC)
			if t1.id != str("t1") || !instant(t, b, t1.ended).Equal(want1) || !t1.eventTime.Equal(want1) ||
				t1.km != (sql.NullFloat64{Float64: 12.5, Valid: true}) || t1.stops != (sql.NullInt64{Int64: 3, Valid: true}) ||
				t1.paid != (sql.NullBool{Bool: true, Valid: true}) || t1.speed != (sql.NullFloat64{Float64: 88.25, Valid: true}) ||
				t1.speedInt != (sql.NullInt64{Int64: 88, Valid: true}) || t1.driver != str("Ann") || t1.rid != str("r-1") ||
				t1.sel != str("s1") || t1.quoted != str("q1") {
				t.Errorf("t1: %+v", t1)
			}
			if !sameJSON(t, t1.route, map[string]any{"from": "A", "to": "B", "via": []int{1, 2}}) ||
				!sameJSON(t, t1.tags, []string{"x", "y"}) || !sameJSON(t, t1.note, "plain text") {
				t.Errorf("t1 JSON columns: %v %v %v", t1.route, t1.tags, t1.note)
			}
			// Zero values are values; absent properties are NULL.
			if t2.km != (sql.NullFloat64{Valid: true}) || t2.stops != (sql.NullInt64{Valid: true}) ||
				t2.paid != (sql.NullBool{Valid: true}) || t2.driver.Valid || t2.speed.Valid ||
				!sameJSON(t, t2.route, map[string]any{}) || !sameJSON(t, t2.tags, []any{}) || !sameJSON(t, t2.note, map[string]any{"n": nil}) {
				t.Errorf("t2: %+v", t2)
			}
			if !instant(t, b, t2.ended).Equal(time.Date(2020, 9, 13, 10, 30, 0, 123456000, time.UTC)) {
				t.Errorf("t2 ended_at %v", t2.ended)
			}
			// Integers beyond 2^53 keep every digit.
			if t3.km.Valid || t3.paid.Valid || t3.route != nil || t3.stops.Int64 != 9007199254740993 || !sameJSON(t, t3.note, 7) {
				t.Errorf("t3: %+v", t3)
			}
		})
	}
}

// TestViewsFollowSchema: a new property is a new column on the next run;
// a view never blocks loading, even when its name is taken by a table.
func TestViewsFollowSchema(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			schemas := filepath.Join(t.TempDir(), "schemas")
			copyDir(t, "../../schemas", schemas)
			p := newPipe(t, b, "../../testdata/sample", schemas, "keep", "keep")
			code, out, errs := carpipe(t, "run", "-c", p.config)
			wantCode(t, code, exitOK, out, errs)
			if _, err := p.db.Exec("SELECT speed FROM vehicles_status"); err == nil {
				t.Fatal("the view has a column its schema lacks")
			}

			path := filepath.Join(schemas, "vehicles_status.schema.json")
			data, _ := os.ReadFile(path)
			data = []byte(strings.Replace(string(data), `"status": {"type": "string"}`, `"status": {"type": "string"}, "speed": {"type": "number"}`, 1))
			os.WriteFile(path, data, 0o644)
			os.WriteFile(filepath.Join(p.inbox, "vehicles_status_1700000000.json"),
				[]byte(`{"vehicle_status": [{"vehicle_id": "fast", "report_time": "2023-11-14T22:13:20Z", "status": "driving", "speed": 131.5}]}`), 0o644)
			code, out, errs = carpipe(t, "run", "-c", p.config)
			wantCode(t, code, exitOK, out, errs)
			wantContains(t, errs, `msg="view created or replaced" view=vehicles_status`)
			if strings.Contains(errs, "view=objects_detection") {
				t.Errorf("an unchanged view was replaced:\n%s", errs)
			}
			if n := p.count(t, "SELECT count(*) FROM vehicles_status WHERE speed = 131.5 AND vehicle_id = 'fast'"); n != 1 {
				t.Errorf("%d rows with the new column's value", n)
			}
			if n := p.count(t, "SELECT count(*) FROM vehicles_status WHERE speed IS NULL"); n != 30 {
				t.Errorf("%d older rows without speed, want 30", n)
			}

			// A table of the old tool holds a view's name: loading goes on.
			if _, err := p.db.Exec("DROP VIEW objects_detection"); err != nil {
				t.Fatal(err)
			}
			if _, err := p.db.Exec("CREATE TABLE objects_detection (id integer)"); err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(p.inbox, "vehicles_status_1700000001.json"),
				[]byte(`{"vehicle_status": [{"vehicle_id": "slow", "report_time": "2023-11-14T22:13:21Z", "status": "parked"}]}`), 0o644)
			code, out, errs = carpipe(t, "migrate", "-c", p.config)
			wantCode(t, code, exitOK, out, errs)
			wantContains(t, errs, "typed views not updated", "view objects_detection: the name is taken by a table")
			code, out, errs = carpipe(t, "run", "-c", p.config)
			wantCode(t, code, exitOK, out, errs)
			wantContains(t, out, "1 processed", "1 inserted")
			wantContains(t, errs, "the name is taken by a table")
			if n := p.count(t, "SELECT count(*) FROM objects_detection"); n != 0 {
				t.Errorf("the table was touched: %d rows", n)
			}
		})
	}
}

// TestSchemasSQL: what `schemas --sql` prints is what run applies.
func TestSchemasSQL(t *testing.T) {
	hash := regexp.MustCompile(`sha256:[0-9a-f]{64}`)
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			p := newPipe(t, b, "../../testdata/sample", "../../schemas", "keep", "keep")
			code, out, errs := carpipe(t, "migrate", "-c", p.config)
			wantCode(t, code, exitOK, out, errs)
			code, out, errs = carpipe(t, "schemas", "-c", p.config, "--sql")
			wantCode(t, code, exitOK, out, errs)
			wantContains(t, out, `CREATE VIEW "vehicles_status" AS`, `CREATE VIEW "objects_detection" AS`, `DROP VIEW IF EXISTS "vehicles_status";`)
			q := "SELECT sql FROM sqlite_master WHERE name = 'vehicles_status'"
			if b.name == "postgres" {
				wantContains(t, out, "::timestamptz", `COMMENT ON VIEW "vehicles_status"`)
				q = "SELECT obj_description('vehicles_status'::regclass, 'pg_class')"
			} else {
				wantContains(t, out, "json_extract(r.payload")
			}
			var note string
			if err := p.db.QueryRow(q).Scan(&note); err != nil {
				t.Fatal(err)
			}
			if h := hash.FindString(note); h == "" || !strings.Contains(out, h) {
				t.Errorf("the applied view's hash %q is not in the printed SQL:\n%s", h, out)
			}
			// The printed SQL runs as it is.
			if _, err := p.db.Exec(out); err != nil {
				t.Fatalf("the printed SQL fails: %v", err)
			}
		})
	}
	code, out, errs := carpipe(t, "schemas", "--schemas", "../../schemas", "--sql", "--dialect", "sqlite")
	wantCode(t, code, exitOK, out, errs)
	wantContains(t, out, "json_type(r.payload")
	code, out, errs = carpipe(t, "schemas", "--schemas", "../../schemas", "--sql", "--dialect", "oracle")
	wantCode(t, code, exitUsage, out, errs)
	code, out, errs = carpipe(t, "schemas", "--schemas", "../../schemas", "--dialect", "sqlite")
	wantCode(t, code, exitUsage, out, errs)
	code, out, errs = carpipe(t, "schemas", "--schemas", "../../schemas")
	wantCode(t, code, exitOK, out, errs)
	wantContains(t, out, "TYPE", "vehicles_status")
}
