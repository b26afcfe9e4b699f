package main

import (
	"encoding/json"
	"encoding/xml"
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

// TestValidateNeverFetches: a schema that refers to a remote one is
// refused (exit 2) before any request (the scripts cover the other codes).
func TestValidateNeverFetches(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Write([]byte(`{"type":"string"}`))
	}))
	defer srv.Close()
	remote := t.TempDir()
	os.WriteFile(filepath.Join(remote, "x.schema.json"), []byte(`{"properties":{"a":{"$ref":"`+srv.URL+`/a.json"}}}`), 0o644)
	code, out, errs := carpipe(t, "validate", "--schemas", remote, abs("../../testdata/validate/mixed/files"))
	wantCode(t, code, exitUsage, out, errs)
	wantContains(t, out+errs, "never fetches")
	if hits.Load() != 0 {
		t.Fatalf("validate made %d network requests", hits.Load())
	}
}
