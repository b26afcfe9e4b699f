package main

import (
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
