package main

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/carpipe/carpipe/plugins/plugintest"
)

// junitXSD is the common JUnit XSD, as CI servers read reports.
var junitXSD = abs("../../testdata/junit/junit.xsd")

const xmllintHow = "apt-get install libxml2-utils"

// xsdCheck runs libxml2's xmllint on a document; there is no XSD validator
// in Go's standard library.
func xsdCheck(bin, doc string) error {
	cmd := exec.Command(bin, "--noout", "--schema", junitXSD, "-")
	cmd.Stdin = strings.NewReader(doc)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%v: %s", err, out)
	}
	return nil
}

// xsdValid checks a JUnit report against the XSD. Without xmllint it
// fails in CI and checks nothing elsewhere: TestJUnitSchema then skips,
// saying so.
func xsdValid(t *testing.T, doc string) {
	t.Helper()
	bin, err := exec.LookPath("xmllint")
	if err != nil {
		if plugintest.CI() {
			t.Fatalf("xmllint is missing; .ci/run installs it (%s)", xmllintHow)
		}
		return
	}
	if err := xsdCheck(bin, doc); err != nil {
		t.Errorf("the JUnit report fails %s: %v\n%s", junitXSD, err, doc)
	}
}

// TestJUnitSchema: the XSD rejects what validate used to write, and
// accepts what it writes now in every mode, with counts that agree with
// the exit code.
func TestJUnitSchema(t *testing.T) {
	bin, err := exec.LookPath("xmllint")
	if err != nil {
		plugintest.Missing(t, "xmllint", xmllintHow)
	}
	for name, doc := range map[string]string{
		"skipped on testsuites":  `<testsuites name="x" tests="1" failures="0" skipped="1"><testsuite name="s" tests="1" failures="0" errors="0" time="0.1"/></testsuites>`,
		"no errors on testsuite": `<testsuites><testsuite name="s" tests="1" failures="0" time="0.1"/></testsuites>`,
		"no time on testsuite":   `<testsuites><testsuite name="s" tests="1" failures="0" errors="0"/></testsuites>`,
		"time not a number":      `<testsuites><testsuite name="s" tests="1" failures="0" errors="0" time="1s"/></testsuites>`,
	} {
		if xsdCheck(bin, doc) == nil {
			t.Errorf("%s: the XSD accepts it", name)
		}
	}

	mixed := abs("../../testdata/validate/mixed/files")
	empty := t.TempDir()
	for _, c := range []struct {
		name                      string
		args                      []string
		code, tests, failures, sk int
	}{
		{"mixed", []string{mixed}, exitPartial, 5, 3, 1},
		{"mixed strict", []string{"--strict", mixed}, exitPartial, 5, 5, 0},
		{"empty", []string{empty}, exitOK, 0, 0, 0},
		{"empty required", []string{"--require-files", empty}, exitPartial, 1, 1, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{"validate", "--schemas", abs("../../schemas"), "--format", "junit"}, c.args...)
			code, out, errs := carpipe(t, args...)
			wantCode(t, code, c.code, out, errs)
			if err := xsdCheck(bin, out); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			var doc struct {
				Tests    int `xml:"tests,attr"`
				Failures int `xml:"failures,attr"`
				Suite    struct {
					Tests    int `xml:"tests,attr"`
					Failures int `xml:"failures,attr"`
					Skipped  int `xml:"skipped,attr"`
				} `xml:"testsuite"`
			}
			if err := xml.Unmarshal([]byte(out), &doc); err != nil {
				t.Fatal(err)
			}
			if doc.Tests != c.tests || doc.Failures != c.failures || doc.Suite.Tests != c.tests ||
				doc.Suite.Failures != c.failures || doc.Suite.Skipped != c.sk {
				t.Errorf("tests %d/%d, failures %d/%d, skipped %d; want %d, %d, %d\n%s",
					doc.Tests, doc.Suite.Tests, doc.Failures, doc.Suite.Failures, doc.Suite.Skipped, c.tests, c.failures, c.sk, out)
			}
			// A report that shows no failure goes with exit 0, and the
			// other way round.
			if (doc.Failures == 0) != (code == exitOK) {
				t.Errorf("exit %d with %d failures in the report", code, doc.Failures)
			}
		})
	}
}

// TestValidateStrictEveryFormat: under --strict, unmatched files and
// warnings fail in every format, as they fail the exit code.
func TestValidateStrictEveryFormat(t *testing.T) {
	files := abs("../../testdata/validate/strict/files")
	for _, strict := range []bool{false, true} {
		args := []string{"validate", "--schemas", abs("../../schemas")}
		want := exitOK
		if strict {
			args, want = append(args, "--strict"), exitPartial
		}
		out := map[string]string{}
		for _, format := range []string{"text", "json", "github", "junit"} {
			code, stdout, errs := carpipe(t, append(args, "--format", format, files)...)
			wantCode(t, code, want, stdout, errs)
			out[format] = stdout
		}
		var doc struct {
			Summary summary
			Files   []struct{ Failed bool }
			Passed  bool
		}
		if err := json.Unmarshal([]byte(out["json"]), &doc); err != nil {
			t.Fatal(err)
		}
		failed := 0
		for _, f := range doc.Files {
			if f.Failed {
				failed++
			}
		}
		if doc.Passed != (want == exitOK) {
			t.Errorf("json: passed %v with exit %d", doc.Passed, want)
		}
		gh := out["github"]
		if strict {
			// The unmatched README and the file with a duplicate key.
			if doc.Summary.Failed != 2 || failed != 2 {
				t.Errorf("json: %d failed, %d files failed, want 2", doc.Summary.Failed, failed)
			}
			if strings.Contains(gh, "::notice") || strings.Contains(gh, "::warning") || strings.Count(gh, "::error") != 2 {
				t.Errorf("github under --strict: want two errors, no notice or warning:\n%s", gh)
			}
			wantContains(t, out["junit"], `failures="2"`, `type="unmatched"`, `type="warning"`)
			wantContains(t, out["text"], "2 failed under --strict", "README.txt: unmatched (no file type claims this name); fails under --strict")
		} else {
			if doc.Summary.Failed != 0 || failed != 0 {
				t.Errorf("json: %d failed without --strict", doc.Summary.Failed)
			}
			if strings.Contains(gh, "::error") || !strings.Contains(gh, "::notice") || !strings.Contains(gh, "::warning") {
				t.Errorf("github without --strict: want a notice and a warning, no error:\n%s", gh)
			}
			wantContains(t, out["junit"], `failures="0"`, `skipped="1"`)
		}
	}
}

// TestValidateNoData: an empty folder, or one no file type claims a file
// of, is said; --require-files makes it fail.
func TestValidateNoData(t *testing.T) {
	empty := t.TempDir()
	for _, c := range []struct {
		args      []string
		code      int
		want, out string
	}{
		{[]string{empty}, exitOK, "carpipe: warning: no data files in " + empty + ": no files at all\n", "0 files"},
		{[]string{"--require-files", empty}, exitPartial, "carpipe: no data files in " + empty + " (--require-files): no files at all\n", "0 files"},
		{[]string{"--require-files", "--format", "json", empty}, exitPartial, "(--require-files): no files at all", `"passed": false`},
		{[]string{"--require-files", "--format", "github", empty}, exitPartial, "(--require-files)", "::error title=carpipe::no data files in " + empty},
		{[]string{"--require-files", abs("../../testdata/validate/valid/files")}, exitOK, "", "2 valid"},
	} {
		code, out, errs := carpipe(t, append([]string{"validate", "--schemas", abs("../../schemas")}, c.args...)...)
		wantCode(t, code, c.code, out, errs)
		if c.want == "" && errs != "" || !strings.Contains(errs, c.want) {
			t.Errorf("%v: stderr %q, want %q", c.args, errs, c.want)
		}
		wantContains(t, out, c.out)
	}
}
