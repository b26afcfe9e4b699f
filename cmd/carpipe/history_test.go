package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// table splits a table's lines into fields; the header is dropped.
func table(t *testing.T, out string) [][]string {
	t.Helper()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	var rows [][]string
	for _, l := range lines[1:] {
		rows = append(rows, strings.Fields(l))
	}
	return rows
}

func TestRunsAndFiles(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			p := newPipe(t, b, "../../testdata/run/bad", "../../schemas", "move:processed", "move:failed")
			// runs never migrates: a new database is an error saying what to do.
			code, out, errs := carpipe(t, "runs", "-c", p.config)
			wantCode(t, code, exitFatal, out, errs)
			wantContains(t, errs, "carpipe migrate -c "+p.config)
			code, out, errs = carpipe(t, "migrate", "-c", p.config)
			wantCode(t, code, exitOK, out, errs)
			code, out, errs = carpipe(t, "runs", "-c", p.config)
			wantCode(t, code, exitOK, out, errs)
			if out != "no runs yet\n" {
				t.Errorf("runs on a new database: %q", out)
			}
			start := time.Now()
			code, out, errs = carpipe(t, "run", "-c", p.config)
			wantCode(t, code, exitPartial, out, errs)

			code, out, errs = carpipe(t, "runs", "-c", p.config)
			wantCode(t, code, exitOK, out, errs)
			if !strings.HasPrefix(out, "RUN  PIPELINE  STARTED              DURATION  PROCESSED  FAILED  SKIPPED  UNMATCHED  AMBIGUOUS  LEFT  HELD  INSERTED  DUPLICATE  REJECTED  STATUS\n") {
				t.Errorf("header:\n%s", out)
			}
			rows := table(t, out)
			if len(rows) != 1 {
				t.Fatalf("runs:\n%s", out)
			}
			r := rows[0]
			started, err := time.ParseInLocation(time.DateTime, r[2]+" "+r[3], time.Local)
			if err != nil || started.Before(start.Add(-time.Second).Truncate(time.Second)) || started.After(time.Now()) {
				t.Errorf("started %q %q: %v", r[2], r[3], err)
			}
			if _, err := time.ParseDuration(r[4]); err != nil {
				t.Errorf("duration %q: %v", r[4], err)
			}
			if want := []string{"1", "test", "1", "4", "0", "1", "0", "0", "0", "2", "0", "0", "partial"}; !slices.Equal(append(r[:2:2], r[5:]...), want) {
				t.Errorf("run row %v, want %v", r, want)
			}

			code, out, errs = carpipe(t, "runs", "-c", p.config, "--format", "json")
			wantCode(t, code, exitOK, out, errs)
			var runs []map[string]any
			if err := json.Unmarshal([]byte(out), &runs); err != nil || len(runs) != 1 {
				t.Fatalf("runs json %q: %v", out, err)
			}
			for k, v := range map[string]any{"id": 1.0, "pipeline": "test", "status": "partial", "files_processed": 1.0,
				"files_failed": 4.0, "files_skipped": 0.0, "files_unmatched": 1.0, "records_inserted": 2.0,
				"records_duplicate": 0.0, "records_rejected": 0.0} {
				if runs[0][k] != v {
					t.Errorf("runs json %s = %v, want %v", k, runs[0][k], v)
				}
			}
			if runs[0]["finished_at"] == nil || runs[0]["started_at"] == nil {
				t.Errorf("runs json times: %v", runs[0])
			}

			code, out, errs = carpipe(t, "files", "-c", p.config, "--status", "failed")
			wantCode(t, code, exitOK, out, errs)
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if len(lines) != 5 {
				t.Fatalf("files --status failed:\n%s", out)
			}
			reasons := map[string]string{
				"vehicles_status_1600000001.json": "invalid JSON at line 4, column 1 (byte 127): unexpected end of file",
				"vehicles_status_1600000002.json": `2 invalid record(s): record 1 /vehicle_status/1/report_time: "report_time": does not match format "date-time", got "not a time"; record 2 /vehicle_status/2/status: "status": expected string, got number 3`,
				"vehicles_status_1600000003.json": "empty file: no JSON document",
				"vehicles_status_1600000004.json": "invalid JSON at line 1, column 40 (byte 39): invalid UTF-8",
			}
			for _, l := range lines[1:] {
				f := strings.Fields(l)
				path := f[5]
				want := []string{"1", "inbox", path, "vehicles_status", "failed", "0", "0", "0", "failed/" + path}
				if got := append([]string{f[1]}, f[4:12]...); !slices.Equal(got, want) {
					t.Errorf("row %v, want %v", got, want)
				}
				if reason, ok := reasons[path]; !ok || !strings.HasSuffix(l, "  "+reason) {
					t.Errorf("row for %s lacks its reason %q:\n%s", path, reason, l)
				}
			}

			code, out, errs = carpipe(t, "files", "-c", p.config, "--format", "json", "--type", "vehicles_status", "--run", "1", "--since", "1h")
			wantCode(t, code, exitOK, out, errs)
			var files []map[string]any
			if err := json.Unmarshal([]byte(out), &files); err != nil || len(files) != 5 {
				t.Fatalf("files json (%v):\n%s", err, out)
			}
			ok := files[0] // newest first: the file that loaded
			for k, v := range map[string]any{"path": "vehicles_status_1600000005.json", "status": "processed", "input": "inbox",
				"records_total": 2.0, "records_inserted": 2.0, "location": "processed/vehicles_status_1600000005.json",
				"error": "", "file_time": "2020-09-13T12:26:45Z", "run_id": 1.0} {
				if ok[k] != v {
					t.Errorf("files json %s = %v, want %v", k, ok[k], v)
				}
			}
			if s, _ := ok["sha256"].(string); len(s) != 64 {
				t.Errorf("sha256 %v", ok["sha256"])
			}

			for _, args := range [][]string{
				{"--since", "2999-01-01T00:00:00Z"}, {"--type", "objects_detection"}, {"--run", "2"},
			} {
				code, out, errs = carpipe(t, append([]string{"files", "-c", p.config}, args...)...)
				wantCode(t, code, exitOK, out, errs)
				if out != "no files\n" {
					t.Errorf("files %v: %q", args, out)
				}
			}
			code, out, errs = carpipe(t, "files", "-c", p.config, "-n", "2")
			wantCode(t, code, exitOK, out, errs)
			if rows := table(t, out); len(rows) != 2 || rows[0][0] != "5" || rows[1][0] != "4" {
				t.Errorf("files -n 2:\n%s", out)
			}

			// A second run is the newest; -n limits.
			carpipe(t, "run", "-c", p.config)
			code, out, errs = carpipe(t, "runs", "-c", p.config, "-n", "1")
			wantCode(t, code, exitOK, out, errs)
			if rows := table(t, out); len(rows) != 1 || rows[0][0] != "2" || rows[0][len(rows[0])-1] != "ok" {
				t.Errorf("runs -n 1:\n%s", out)
			}

			for _, args := range [][]string{
				{"files", "-c", p.config, "--status", "lost"},
				{"files", "-c", p.config, "--since", "yesterday"},
				{"runs", "-c", p.config, "--format", "xml"},
				{"runs", "-c", p.config, "extra"},
			} {
				code, out, errs = carpipe(t, args...)
				wantCode(t, code, exitUsage, out, errs)
			}
		})
	}
}

func TestRejects(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			p := newPipe(t, b, "../../testdata/run/skip/inbox", "../../testdata/run/skip/schemas", "keep", "keep")
			os.WriteFile(filepath.Join(p.inbox, "vehicles_status_1600000003.json"), nil, 0o644)
			code, out, errs := carpipe(t, "run", "-c", p.config, "--workers", "1")
			wantCode(t, code, exitPartial, out, errs)
			var loaded, failed int
			if err := p.db.QueryRow("SELECT id FROM files WHERE status = 'processed'").Scan(&loaded); err != nil {
				t.Fatal(err)
			}
			if err := p.db.QueryRow("SELECT id FROM files WHERE path = 'vehicles_status_1600000003.json'").Scan(&failed); err != nil {
				t.Fatal(err)
			}

			code, out, errs = carpipe(t, "rejects", "-c", p.config, "--file", fmt.Sprint(loaded))
			wantCode(t, code, exitOK, out, errs)
			lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
			if want := fmt.Sprintf("file %d inbox/vehicles_status_1600000002.json (vehicles_status, run 1, processed): 2 rejected record(s)", loaded); lines[0] != want {
				t.Errorf("first line %q, want %q", lines[0], want)
			}
			if len(lines) < 4 || !strings.HasPrefix(lines[1], "RECORD  POINTER") {
				t.Fatalf("rejects:\n%s", out)
			}
			wantContains(t, out, `2       /status`, `"status": expected string, got number 3`,
				`{"vehicle_id": "c", "report_time": "2020-01-01T14:05:11Z", "status": 3}`)
			rows := table(t, strings.Join(lines[1:], "\n"))
			var records []string
			for _, r := range rows {
				if r[0] != "" {
					records = append(records, r[0])
				}
			}
			if !slices.Contains(records, "1") || !slices.Contains(records, "2") {
				t.Errorf("rejected records %v", records)
			}

			code, out, errs = carpipe(t, "rejects", "-c", p.config, "--file", fmt.Sprint(loaded), "--format", "json")
			wantCode(t, code, exitOK, out, errs)
			var rejects []struct {
				FileID int `json:"file_id"`
				Index  int `json:"record_index"`
				Errors []struct{ Pointer, Message string }
				Raw    string `json:"payload"`
			}
			if err := json.Unmarshal([]byte(out), &rejects); err != nil || len(rejects) != 2 {
				t.Fatalf("rejects json (%v):\n%s", err, out)
			}
			r := rejects[1]
			if r.FileID != loaded || r.Index != 2 || len(r.Errors) != 1 || r.Errors[0].Pointer != "/status" ||
				r.Errors[0].Message != `"status": expected string, got number 3` || !strings.Contains(r.Raw, `"status": 3`) {
				t.Errorf("reject %+v", r)
			}

			code, out, errs = carpipe(t, "rejects", "-c", p.config, "--file", fmt.Sprint(failed))
			wantCode(t, code, exitOK, out, errs)
			wantContains(t, out, "0 rejected record(s)", "the whole file failed, so none of its records was kept: empty file")

			code, out, errs = carpipe(t, "rejects", "-c", p.config, "--file", "999")
			wantCode(t, code, exitFatal, out, errs)
			wantContains(t, errs, "no file 999 in the ledger")
			code, out, errs = carpipe(t, "rejects", "-c", p.config)
			wantCode(t, code, exitUsage, out, errs)
		})
	}
}

// brokenSchemas copies the shipped schemas with vehicles_status wanting an
// integer status, which every sample status report fails.
func brokenSchemas(t *testing.T) string {
	dir := filepath.Join(t.TempDir(), "schemas")
	copyDir(t, "../../schemas", dir)
	path := filepath.Join(dir, "vehicles_status.schema.json")
	data, _ := os.ReadFile(path)
	os.WriteFile(path, []byte(strings.Replace(string(data), `"status": {"type": "string"}`, `"status": {"type": "integer"}`, 1)), 0o644)
	return dir
}

func TestReprocessFixedSchema(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			schemas := brokenSchemas(t)
			p := newPipe(t, b, "../../testdata/sample", schemas, "move:processed", "move:failed")
			code, out, errs := carpipe(t, "run", "-c", p.config)
			wantCode(t, code, exitPartial, out, errs)
			wantContains(t, out, "3 processed, 3 failed", "30 inserted")

			// Nothing to do until a failed file is named or --failed given.
			code, out, errs = carpipe(t, "reprocess", "-c", p.config)
			wantCode(t, code, exitUsage, out, errs)
			var loadedID int
			p.db.QueryRow("SELECT id FROM files WHERE status = 'processed' ORDER BY id LIMIT 1").Scan(&loadedID)
			code, out, errs = carpipe(t, "reprocess", "-c", p.config, fmt.Sprint(loadedID), "12345")
			wantCode(t, code, exitPartial, out, errs)
			wantContains(t, out, fmt.Sprintf("file %d inbox/objects_detection_1600000060.json: not put back: it was loaded (run 1, 10 records inserted); nothing to reprocess", loadedID),
				"file 12345: not put back: no such file in the ledger")

			copyDir(t, "../../schemas", schemas) // the fix
			code, out, errs = carpipe(t, "reprocess", "-c", p.config, "--failed", "--since", "1h")
			wantCode(t, code, exitOK, out, errs)
			for _, name := range []string{"vehicles_status_1600000000.json", "vehicles_status_1600003600.json", "vehicles_status_1600007200.json"} {
				wantContains(t, out, "inbox/"+name+": put back from failed/"+name+" to "+name+"\n")
				if n := p.count(t, "SELECT count(*) FROM files WHERE path = '"+name+"' AND status = 'failed' AND location = '"+name+"'"); n != 1 {
					t.Errorf("%s: ledger location not updated", name)
				}
			}
			wantContains(t, out, "3 of 3 file(s) ready: the next run loads them")
			code, out, errs = carpipe(t, "reprocess", "-c", p.config, "--failed")
			wantCode(t, code, exitOK, out, errs)
			wantContains(t, out, "no failed file to put back")

			code, out, errs = carpipe(t, "run", "-c", p.config)
			wantCode(t, code, exitOK, out, errs)
			wantContains(t, out, "3 processed, 0 failed", "30 inserted, 0 duplicate")
			code, out, errs = carpipe(t, "run", "-c", p.config)
			wantCode(t, code, exitOK, out, errs)
			wantContains(t, out, "0 processed, 0 failed, 0 skipped", "0 inserted")
			if n := p.count(t, "SELECT count(*) FROM records"); n != 60 {
				t.Errorf("%d records, want 60", n)
			}
			// The failed rows were taken over: one row per file, loaded once.
			if n := p.count(t, "SELECT count(*) FROM files WHERE status = 'processed' AND records_inserted = 10 AND location LIKE 'processed/%'"); n != 6 {
				t.Errorf("%d processed files", n)
			}
			if n := p.count(t, "SELECT count(*) FROM files"); n != 6 {
				t.Errorf("%d ledger rows, want 6", n)
			}
			if got := p.ls(t); len(got) != 6 || !strings.HasPrefix(got[0], "processed/") || !strings.HasPrefix(got[5], "processed/") {
				t.Errorf("files %v", got)
			}
		})
	}
}

func TestReprocessFixedFile(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			p := newPipe(t, b, "../../testdata/run/bad", "../../schemas", "move:processed", "move:failed")
			code, out, errs := carpipe(t, "run", "-c", p.config)
			wantCode(t, code, exitPartial, out, errs)
			var id int
			if err := p.db.QueryRow("SELECT id FROM files WHERE path = 'vehicles_status_1600000001.json'").Scan(&id); err != nil {
				t.Fatal(err)
			}
			// The file is fixed where on_failure put it.
			fixed := `{"vehicle_status": [{"vehicle_id": "z", "report_time": "2020-01-01T00:00:00Z", "status": "ok"}]}`
			os.WriteFile(filepath.Join(p.inbox, "failed/vehicles_status_1600000001.json"), []byte(fixed), 0o644)

			// A file already at the original place is never overwritten.
			os.WriteFile(filepath.Join(p.inbox, "vehicles_status_1600000001.json"), []byte("{}"), 0o644)
			code, out, errs = carpipe(t, "reprocess", "-c", p.config, fmt.Sprint(id))
			wantCode(t, code, exitPartial, out, errs)
			wantContains(t, out, "vehicles_status_1600000001.json is taken by another file")
			os.Remove(filepath.Join(p.inbox, "vehicles_status_1600000001.json"))

			code, out, errs = carpipe(t, "reprocess", "-c", p.config, fmt.Sprint(id))
			wantCode(t, code, exitOK, out, errs)
			wantContains(t, out, "put back from failed/vehicles_status_1600000001.json to vehicles_status_1600000001.json")
			code, out, errs = carpipe(t, "run", "-c", p.config)
			wantCode(t, code, exitOK, out, errs)
			wantContains(t, out, "1 processed, 0 failed", "1 inserted")
			if n := p.count(t, "SELECT count(*) FROM records WHERE record_key LIKE '[\"z\",%'"); n != 1 {
				t.Errorf("%d records of the fixed file", n)
			}
			code, out, errs = carpipe(t, "run", "-c", p.config)
			wantCode(t, code, exitOK, out, errs)
			wantContains(t, out, "0 processed", "0 inserted")
			// Its old bytes stay failed in the ledger, but there is nothing
			// of it left to put back; the other failed files are.
			code, out, errs = carpipe(t, "reprocess", "-c", p.config, "--failed")
			wantCode(t, code, exitOK, out, errs)
			wantContains(t, out, "3 of 3 file(s) ready", "put back from failed/vehicles_status_1600000004.json")
			if strings.Contains(out, "vehicles_status_1600000001") {
				t.Errorf("the loaded file was picked again:\n%s", out)
			}
		})
	}
}

// TestReprocessUnrecorded: a move the ledger missed (a crash before it was
// written) is looked for in on_failure's folder; a deleted file is said so.
func TestReprocessUnrecorded(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			p := newPipe(t, b, "../../testdata/run/bad", "../../schemas", "move:processed", "move:failed")
			code, out, errs := carpipe(t, "run", "-c", p.config)
			wantCode(t, code, exitPartial, out, errs)
			const name = "vehicles_status_1600000003.json"
			if _, err := p.db.Exec("UPDATE files SET location = path WHERE path = '" + name + "'"); err != nil {
				t.Fatal(err)
			}
			var id int
			p.db.QueryRow("SELECT id FROM files WHERE path = '" + name + "'").Scan(&id)
			code, out, errs = carpipe(t, "reprocess", "-c", p.config, fmt.Sprint(id))
			wantCode(t, code, exitOK, out, errs)
			wantContains(t, out, "put back from failed/"+name+" to "+name+"\n")
			if _, err := os.Stat(filepath.Join(p.inbox, name)); err != nil {
				t.Error(err)
			}
			code, out, errs = carpipe(t, "reprocess", "-c", p.config, fmt.Sprint(id))
			wantCode(t, code, exitOK, out, errs)
			wantContains(t, out, name+": already in place")

			d := newPipe(t, b, "../../testdata/run/bad", "../../schemas", "keep", "delete")
			code, out, errs = carpipe(t, "run", "-c", d.config)
			wantCode(t, code, exitPartial, out, errs)
			d.db.QueryRow("SELECT id FROM files WHERE path = '" + name + "'").Scan(&id)
			code, out, errs = carpipe(t, "reprocess", "-c", d.config, fmt.Sprint(id))
			wantCode(t, code, exitPartial, out, errs)
			wantContains(t, out, "it was deleted (on_failure: delete); nothing to put back")
			if n := d.count(t, "SELECT count(*) FROM files WHERE status = 'failed' AND location = ''"); n != 4 {
				t.Errorf("%d deleted files recorded as such, want 4", n)
			}
		})
	}
}
