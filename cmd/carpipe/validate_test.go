package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/carpipe/carpipe/plugins/plugintest"
)

// TestValidateGolden runs validate over each testdata/validate/<case>/files
// in every format and compares with the case's want.<format> files; the
// exit code is in want.code, what stderr says (if anything) in want.stderr,
// and the case's extra flags (if any) in args. go test -update rewrites
// them. Every JUnit report is checked against the JUnit XSD.
func TestValidateGolden(t *testing.T) {
	cases, err := filepath.Glob("../../testdata/validate/*")
	if err != nil || len(cases) == 0 {
		t.Fatalf("no cases: %v", err)
	}
	schemasDir := abs("../../schemas")
	for _, dir := range cases {
		dir := abs(dir)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			t.Chdir(dir)
			sdir := schemasDir
			if _, err := os.Stat("schemas"); err == nil {
				sdir = "schemas"
			}
			var extra []string
			if b, err := os.ReadFile("args"); err == nil {
				extra = strings.Fields(string(b))
			}
			codes := map[string]int{}
			for _, format := range []string{"text", "json", "github", "junit"} {
				args := append([]string{"validate", "--schemas", sdir, "--format", format, "--workers", "3"}, extra...)
				code, out, errs := carpipe(t, append(args, "files")...)
				if _, err := os.Stat("want.stderr"); err == nil || *plugintest.Update && errs != "" {
					golden(t, "want.stderr", errs)
				} else if errs != "" {
					t.Errorf("%s: stderr: %s", format, errs)
				}
				codes[format] = code
				if format == "junit" {
					xsdValid(t, out)
					out = junitTime.ReplaceAllString(out, `time="(seconds)"`)
				}
				golden(t, "want."+format, out)
				checkWellFormed(t, format, out)
			}
			for f, c := range codes {
				if c != codes["text"] {
					t.Errorf("exit code differs by format: %s %d, text %d", f, c, codes["text"])
				}
			}
			golden(t, "want.code", strconv.Itoa(codes["text"])+"\n")
		})
	}
}

// junitTime matches the measured times of a JUnit report, which differ
// from run to run.
var junitTime = regexp.MustCompile(`time="[0-9]+\.[0-9]{3}"`)

func golden(t *testing.T, name, got string) {
	t.Helper()
	if *plugintest.Update {
		if err := os.WriteFile(name, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(name)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs (go test -update rewrites it)\n--- got:\n%s\n--- want:\n%s", name, got, want)
	}
}

func checkWellFormed(t *testing.T, format, out string) {
	t.Helper()
	switch format {
	case "json":
		var doc struct {
			Files []struct {
				Path  string
				Valid bool
			}
			Summary struct{ Files, Valid, Invalid, Unmatched int }
		}
		if err := json.Unmarshal([]byte(out), &doc); err != nil || doc.Summary.Files != len(doc.Files) {
			t.Errorf("json output: %v", err)
		}
	case "junit":
		var doc struct {
			Tests int `xml:"tests,attr"`
		}
		if err := xml.Unmarshal([]byte(out), &doc); err != nil || doc.Tests == 0 {
			t.Errorf("junit output: %v", err)
		}
	case "github":
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			if strings.HasPrefix(l, "::") && !strings.Contains(l[2:], "::") {
				t.Errorf("malformed workflow command %q", l)
			}
		}
	}
}

// TestValidateWritesNothing: with a config whose output is a SQLite file
// and another whose output is an unreachable Postgres with unset
// variables, validate opens no database, moves nothing, and succeeds.
func TestValidateWritesNothing(t *testing.T) {
	dir := t.TempDir()
	inbox := filepath.Join(dir, "inbox")
	copyDir(t, "../../testdata/sample", inbox)
	for name, out := range map[string]string{
		"sqlite":   "{name: db, type: sqlite, path: db.sqlite}",
		"postgres": "{name: db, type: postgres, host: '${NOPE_HOST}', port: 1, password: '${NOPE_PASS}', database: x}",
	} {
		t.Run(name, func(t *testing.T) {
			cfg := filepath.Join(dir, name+".yaml")
			os.WriteFile(cfg, []byte(fmt.Sprintf(`version: 1
name: v
schemas: %s
inputs:
  - {name: inbox, type: dir, path: inbox, on_success: "move:processed", on_failure: "move:failed"}
outputs:
  - %s
`, abs("../../schemas"), out)), 0o644)
			code, stdout, errs := carpipe(t, "validate", "-c", cfg)
			wantCode(t, code, exitOK, stdout, errs)
			wantContains(t, stdout, "6 files: 6 valid, 0 invalid, 0 unmatched")
			if _, err := os.Stat(filepath.Join(dir, "db.sqlite")); err == nil {
				t.Fatal("validate created the database file")
			}
			entries, _ := os.ReadDir(inbox)
			if len(entries) != 6 {
				t.Fatalf("inbox changed: %d entries", len(entries))
			}
		})
	}
}

func TestValidateExitCodes(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Write([]byte(`{"type":"string"}`))
	}))
	defer srv.Close()
	remote := t.TempDir()
	os.WriteFile(filepath.Join(remote, "x.schema.json"), []byte(`{"properties":{"a":{"$ref":"`+srv.URL+`/a.json"}}}`), 0o644)
	newer := t.TempDir()
	os.WriteFile(filepath.Join(newer, "x.schema.json"), []byte(`{"$schema":"https://json-schema.org/draft/2020-12/schema"}`), 0o644)
	files := abs("../../testdata/validate/mixed/files")
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"valid", []string{"--schemas", abs("../../schemas"), abs("../../testdata/sample")}, exitOK, "6 files: 6 valid"},
		{"invalid", []string{"--schemas", abs("../../schemas"), files}, exitPartial, "invalid"},
		{"unmatched only", []string{"--schemas", abs("../../schemas"), filepath.Join(files, "README.txt")}, exitOK, "1 unmatched"},
		{"strict unmatched", []string{"--strict", "--schemas", abs("../../schemas"), filepath.Join(files, "README.txt")}, exitPartial, "1 unmatched"},
		{"remote ref", []string{"--schemas", remote, files}, exitUsage, "never fetches"},
		{"2020-12", []string{"--schemas", newer, files}, exitUsage, "draft 2020-12"},
		{"no schemas", []string{files}, exitUsage, "give -c CONFIG or --schemas DIR"},
		{"bad format", []string{"--format", "yaml", "--schemas", abs("../../schemas"), files}, exitUsage, "--format"},
		{"missing path", []string{"--schemas", abs("../../schemas"), "/no/such/file"}, exitUsage, "no such file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errs := carpipe(t, append([]string{"validate"}, c.args...)...)
			wantCode(t, code, c.code, out, errs)
			wantContains(t, out+errs, c.want)
		})
	}
	if hits.Load() != 0 {
		t.Fatalf("validate made %d network requests", hits.Load())
	}
}

// TestNewFileTypeBySchemaOnly adds a file type the code has never seen:
// dropping its schema is all check, validate and run need.
func TestNewFileTypeBySchemaOnly(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			schemas := t.TempDir()
			copyDir(t, "../../schemas", schemas)
			os.WriteFile(filepath.Join(schemas, "trip_summary.schema.json"), []byte(`{
  "type": "object",
  "x-carpipe": {"match": "^trip_summary_(?P<timestamp>\\d+)\\.json$", "records": "/trips", "key": ["trip_id"], "time": "ended_at"},
  "required": ["trip_id", "ended_at", "km"],
  "properties": {"trip_id": {"type": "string"}, "ended_at": {"type": "integer"}, "km": {"type": "number", "minimum": 0}}
}`), 0o644)
			files := t.TempDir()
			os.WriteFile(filepath.Join(files, "trip_summary_1700000000.json"), []byte(`{"trips": [
  {"trip_id": "t1", "ended_at": 1700000000, "km": 12.5},
  {"trip_id": "t2", "ended_at": 1700000100, "km": 3},
  {"trip_id": "t1", "ended_at": 1700000000, "km": 12.5}
]}`), 0o644)
			p := newPipe(t, b, files, schemas, "keep", "keep")
			code, out, errs := carpipe(t, "schemas", "--schemas", schemas)
			wantCode(t, code, exitOK, out, errs)
			wantContains(t, out, "trip_summary", "/trips", "trip_id", "ended_at")
			code, out, errs = carpipe(t, "check", "-c", p.config, "--sample", "trip_summary_1700000000.json")
			wantCode(t, code, exitOK, out, errs)
			code, out, errs = carpipe(t, "validate", "-c", p.config)
			wantCode(t, code, exitOK, out, errs)
			wantContains(t, out, "1 files: 1 valid", `duplicate key ["t1"]`)
			code, out, errs = carpipe(t, "run", "-c", p.config)
			wantCode(t, code, exitOK, out, errs)
			wantContains(t, out, "2 inserted, 1 duplicate")
			var key string
			var when string
			if err := p.db.QueryRow("SELECT record_key, event_time FROM records WHERE file_type = 'trip_summary' ORDER BY record_key LIMIT 1").Scan(&key, &when); err != nil {
				t.Fatal(err)
			}
			if key != `["t1"]` || !strings.Contains(when, "2023-11-14") {
				t.Fatalf("stored %s at %s", key, when)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.yaml")
	os.WriteFile(cfg, []byte(`version: 1
name: c
schemas: `+abs("../../schemas")+`
inputs:
  - {name: in, type: dir, path: ., speed: 3}
  - {name: in2, type: ftpx}
outputs:
  - {name: db, type: postgres, host: '${UNSET_HOST_X}', database: d, sslmode: maybe}
`), 0o644)
	code, out, errs := carpipe(t, "check", "-c", cfg, "--sample", "vehicles_status_1600000000.json", "--sample", "nothing.json")
	wantCode(t, code, exitUsage, out, errs)
	wantContains(t, errs,
		`c.yaml:5:36: unknown key "speed"`,
		`unknown input type "ftpx" (registered: [`,
		"warning: "+cfg+":8:38: variable UNSET_HOST_X is not set",
		`sample "nothing.json" matches no file type`)
	wantContains(t, out, "3 problem(s)")
	if bytes.Contains([]byte(errs), []byte("sslmode")) {
		t.Errorf("an entry with unset variables was validated: %s", errs)
	}
	// Every problem in one pass: an unknown key does not hide the bad
	// values beside it, nor the plugin's own checks.
	os.WriteFile(cfg, []byte(`version: 1
name: c
schemas: `+abs("../../schemas")+`
bogus: 1
inputs:
  - {name: in, type: dir, path: ., speed: 3, on_success: throw, min_age: -1s}
  - {name: in2, type: sftp, host: h, user: u, port: 0, on_failure: "move:../x"}
outputs:
  - {name: db, type: postgres, host: h, database: d, sslmode: maybe}
  - {name: j, type: jsonl}
`), 0o644)
	code, out, errs = carpipe(t, "check", "-c", cfg)
	wantCode(t, code, exitUsage, out, errs)
	wantContains(t, errs, `4:1: unknown key "bogus"`, `6:36: unknown key "speed"`, `6:5: input in: unknown action "throw"`,
		"6:5: input in: min_age must not be negative", "7:5: in2: port 0 is not a TCP port", "7:5: in2: no credentials",
		`7:5: input in2: move:../x: path "../x" escapes`, `9:5: db: sslmode "maybe"`, `10:5: missing required key "path" in output "j"`)
	wantContains(t, out, "9 problem(s)")

	code, out, errs = carpipe(t, "check", "-c", "../../config/demo.yaml")
	wantCode(t, code, exitOK, out, errs)
	wantContains(t, out, "ok (1 inputs, 1 outputs, 2 file types)")
}
