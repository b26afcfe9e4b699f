package main

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/carpipe/carpipe/engine"
	"github.com/carpipe/carpipe/plugins"
	"github.com/carpipe/carpipe/schemas"
)

func (c *cli) validateCmd() *cobra.Command {
	var schemasDir string
	var strict, requireFiles, verbose bool
	var workers int
	var out *format
	cmd := c.command("validate [PATH...]", "Check files as run would, writing nothing",
		`Check data files against their file types' schemas as run would, writing
nothing and connecting to no database: the files and folders named, or,
with -c and no PATH, every file the config's inputs list. Each file is
routed by its name to one file type; a file no type claims is unmatched.
The formats github (workflow annotations) and junit (a test report) are
for CI. Exits 3 when a file is invalid, or with --strict also unmatched.`,
		`  # Check a folder against the shipped file types
  carpipe validate --schemas schemas testdata/sample

  # Everything the config's inputs would load, without loading it
  carpipe validate -c config/pipeline.yaml

  # In CI: annotations on the pull request, or a JUnit report
  carpipe validate --schemas schemas data --format github
  carpipe validate --schemas schemas data --format junit > report.xml`,
		cobra.ArbitraryArgs, func(cmd *cobra.Command, paths []string) error {
			k := verdict{strict: strict, requireFiles: requireFiles, verbose: verbose}
			return c.validate(cmd, paths, schemasDir, out.value, k, workers)
		})
	c.configFlag(cmd)
	f := cmd.Flags()
	f.StringVar(&schemasDir, "schemas", "", "schemas `DIR` (default: the config's)")
	f.BoolVar(&strict, "strict", false, "unmatched files and warnings count as failures")
	f.BoolVar(&requireFiles, "require-files", false, "exit 3 when no file matches a file type")
	f.BoolVarP(&verbose, "v", "v", false, "text: list valid files too")
	f.IntVar(&workers, "workers", runtime.NumCPU(), "files read at once")
	out = formatFlag(cmd, "text", "json", "github", "junit")
	return cmd
}

func (c *cli) validate(cmd *cobra.Command, paths []string, dir, format string, k verdict, workers int) error {
	write := formats[format]
	given := cmd.Flags().Changed
	switch {
	case k.verbose && format != "text":
		return noEffect("-v", "with --format "+format+": only text lists valid files")
	case given("config") && dir != "" && len(paths) > 0:
		return noEffect("-c", "with --schemas and paths, which say all it would")
	case workers < 1:
		return usageError("--workers must be at least 1")
	}
	if c.configPath == "" && dir == "" {
		if v, ok := c.env("CARPIPE_CONFIG"); ok && v != "" {
			c.configPath = v
		} else {
			return usageError("give -c CONFIG or --schemas DIR")
		}
	}
	if c.configPath == "" && len(paths) == 0 {
		return usageError("without -c, name the files or folders to validate")
	}

	var e *engine.Engine
	if c.configPath != "" {
		cfg, err := c.loadConfig()
		if err != nil {
			return err
		}
		if dir == "" {
			dir = cfg.Schemas
		}
		if len(paths) == 0 {
			// Only the inputs are needed: their unset variables matter,
			// the outputs' do not, and nothing is opened for writing.
			if err := unset(cfg.Inputs); err != nil {
				return err
			}
			if e, err = engine.New(c.ctx, cfg, plugins.Default, nil, engine.Options{InputsOnly: true, ReadOnly: true, Logger: c.log, Secret: c.mask.add}); err != nil {
				return configError(err)
			}
			defer e.Close()
		}
	}
	set, err := schemas.LoadContext(c.ctx, dir, schemas.Options{})
	if err != nil {
		return &exitError{exitUsage, err}
	}

	var srcs []engine.Source
	if e != nil {
		srcs, err = e.Sources(c.ctx)
	} else {
		srcs, err = localSources(paths)
	}
	if err != nil {
		return &exitError{exitUsage, err}
	}
	k.where = strings.Join(paths, ", ")
	if e != nil {
		k.where = "the config's inputs"
	}
	start := time.Now()
	reports := engine.Validate(c.ctx, set, srcs, workers)
	k.took = time.Since(start)
	return k.finish(c, write, reports)
}

// localSources expands the named files and folders (recursively).
func localSources(paths []string) ([]engine.Source, error) {
	var out []engine.Source
	add := func(p string) {
		out = append(out, engine.Source{Path: filepath.ToSlash(p), Open: func() (io.ReadCloser, error) { return os.Open(p) }})
	}
	for _, root := range paths {
		st, err := os.Stat(root)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			add(root)
			continue
		}
		err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.Type().IsRegular() && !strings.HasPrefix(d.Name(), ".") {
				add(p)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// verdict is how validate judges its reports: every format and the exit
// code go through it, so that a report never disagrees with the exit code.
type verdict struct {
	strict       bool   // unmatched files and warnings are failures
	requireFiles bool   // no data file is a failure
	verbose      bool   // text: list valid files too
	where        string // what was read, for the no-data message
	took         time.Duration
}

// fails reports whether a file fails the check.
func (k verdict) fails(r engine.Report) bool {
	if !r.Unmatched && !r.Valid() {
		return true
	}
	return k.strict && (r.Unmatched || len(r.Warnings) > 0)
}

// noData reports whether no file matched a file type: an empty folder, or
// the wrong one.
func noData(rs []engine.Report) bool {
	for _, r := range rs {
		if !r.Unmatched {
			return false
		}
	}
	return true
}

// noDataMessage says that there was nothing to validate, and why.
func (k verdict) noDataMessage(rs []engine.Report) string {
	msg := "no data files in " + k.where
	if k.requireFiles {
		msg += " (--require-files)"
	}
	if len(rs) == 0 {
		return msg + ": no files at all"
	}
	return msg + fmt.Sprintf(": none of its %d files is named like a file type (carpipe schemas lists the names)", len(rs))
}

// passed is the verdict: false exactly when validate exits 3.
func (k verdict) passed(rs []engine.Report) bool {
	return k.summarize(rs).Failed == 0 && !(k.requireFiles && noData(rs))
}

// finish writes the reports and picks the exit code.
func (k verdict) finish(c *cli, write func(io.Writer, []engine.Report, verdict) error, rs []engine.Report) error {
	if noData(rs) {
		if k.requireFiles {
			c.report(errors.New(k.noDataMessage(rs)), exitPartial)
		} else {
			c.problems(slog.LevelWarn, []error{errors.New(k.noDataMessage(rs))})
		}
	}
	if err := write(c.stdout, rs, k); err != nil {
		return fatalError(err)
	}
	if !k.passed(rs) {
		return errPartial
	}
	return nil
}

type summary struct {
	Files     int `json:"files"`
	Valid     int `json:"valid"`
	Invalid   int `json:"invalid"`
	Unmatched int `json:"unmatched"`
	// Failed counts the files that fail the check: the invalid ones, and
	// under --strict the unmatched ones and those with warnings.
	Failed int `json:"failed"`
}

func (k verdict) summarize(rs []engine.Report) summary {
	s := summary{Files: len(rs)}
	for _, r := range rs {
		switch {
		case r.Unmatched:
			s.Unmatched++
		case r.Valid():
			s.Valid++
		default:
			s.Invalid++
		}
		if k.fails(r) {
			s.Failed++
		}
	}
	return s
}

// line is the summary's last line in the text and github formats.
func (k verdict) line(rs []engine.Report) string {
	s := k.summarize(rs)
	out := fmt.Sprintf("%d files: %d valid, %d invalid, %d unmatched", s.Files, s.Valid, s.Invalid, s.Unmatched)
	if k.strict {
		out += fmt.Sprintf("; %d failed under --strict", s.Failed)
	}
	return out
}

// name is how a report names its file: input:path for config inputs.
func name(r engine.Report) string {
	if r.Input != "" {
		return r.Input + ":" + r.Path
	}
	return r.Path
}

var formats = map[string]func(io.Writer, []engine.Report, verdict) error{
	"text":   writeText,
	"json":   writeJSON,
	"github": writeGitHub,
	"junit":  writeJUnit,
}

func where(f engine.Finding) string {
	var b strings.Builder
	if f.Record >= 0 {
		fmt.Fprintf(&b, "record %d ", f.Record)
	}
	if f.Pointer != "" {
		b.WriteString(f.Pointer + " ")
	}
	if f.Line > 0 && f.Record >= 0 {
		fmt.Fprintf(&b, "(line %d) ", f.Line)
	}
	return b.String()
}

const unmatchedMsg = "no file type claims this name"

func writeText(w io.Writer, rs []engine.Report, k verdict) error {
	strictly := ""
	if k.strict {
		strictly = "; fails under --strict"
	}
	for _, r := range rs {
		switch {
		case r.Unmatched:
			fmt.Fprintf(w, "%s: unmatched (%s)%s\n", name(r), unmatchedMsg, strictly)
			continue
		case r.Valid() && len(r.Warnings) == 0:
			if k.verbose {
				fmt.Fprintf(w, "%s: valid (%s, %d records)\n", name(r), r.FileType, r.Records)
			}
			continue
		case r.Valid():
			fmt.Fprintf(w, "%s: valid (%s, %d records)%s\n", name(r), r.FileType, r.Records, strictly)
		default:
			fmt.Fprintf(w, "%s: invalid (%s, %d records)\n", name(r), r.FileType, r.Records)
		}
		for _, f := range r.Errors {
			fmt.Fprintf(w, "  error: %s%s\n", where(f), f.Message)
		}
		if r.Dropped > 0 {
			fmt.Fprintf(w, "  ... and %d more errors\n", r.Dropped)
		}
		for _, f := range r.Warnings {
			fmt.Fprintf(w, "  warning: %s%s\n", where(f), f.Message)
		}
	}
	_, err := fmt.Fprintln(w, k.line(rs))
	return err
}

type jsonFinding struct {
	Record  *int   `json:"record"`
	Pointer string `json:"pointer"`
	Message string `json:"message"`
	Line    int    `json:"line,omitempty"`
	Column  int    `json:"column,omitempty"`
}

type jsonFile struct {
	Path      string        `json:"path"`
	Input     string        `json:"input,omitempty"`
	FileType  *string       `json:"file_type"`
	Valid     bool          `json:"valid"`
	Failed    bool          `json:"failed"`
	Unmatched bool          `json:"unmatched,omitempty"`
	Records   int           `json:"records"`
	Errors    []jsonFinding `json:"errors"`
	Dropped   int           `json:"more_errors,omitempty"`
	Warnings  []jsonFinding `json:"warnings,omitempty"`
}

func findings(fs []engine.Finding) []jsonFinding {
	out := make([]jsonFinding, len(fs))
	for i, f := range fs {
		out[i] = jsonFinding{Pointer: f.Pointer, Message: f.Message, Line: f.Line, Column: f.Col}
		if f.Record >= 0 {
			rec := f.Record
			out[i].Record = &rec
		}
	}
	return out
}

func writeJSON(w io.Writer, rs []engine.Report, k verdict) error {
	doc := struct {
		Files   []jsonFile `json:"files"`
		Summary summary    `json:"summary"`
		Passed  bool       `json:"passed"` // false when validate exits 3
	}{Files: make([]jsonFile, len(rs)), Summary: k.summarize(rs), Passed: k.passed(rs)}
	for i, r := range rs {
		jf := jsonFile{Path: r.Path, Input: r.Input, Valid: r.Valid(), Failed: k.fails(r), Unmatched: r.Unmatched, Records: r.Records,
			Errors: findings(r.Errors), Dropped: r.Dropped, Warnings: findings(r.Warnings)}
		if !r.Unmatched {
			ft := r.FileType
			jf.FileType = &ft
		}
		doc.Files[i] = jf
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}

// GitHub workflow commands: data escapes %, CR, LF; properties also : and ,.
var (
	ghData = strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A")
	ghProp = strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C")
)

// writeGitHub writes workflow commands: an annotation per finding, at the
// level the check gives it, so that a failed job always shows why.
func writeGitHub(w io.Writer, rs []engine.Report, k verdict) error {
	emit := func(level string, r engine.Report, f engine.Finding) {
		props := "file=" + ghProp.Replace(r.Path)
		if f.Line > 0 {
			props += fmt.Sprintf(",line=%d,col=%d", f.Line, f.Col)
		}
		props += ",title=" + ghProp.Replace("carpipe "+r.FileType)
		fmt.Fprintf(w, "::%s %s::%s\n", level, props, ghData.Replace(where(f)+f.Message))
	}
	// Under --strict what would only warn fails the job: say it as an error.
	warning, notice := "warning", "notice"
	if k.strict {
		warning, notice = "error", "error"
	}
	for _, r := range rs {
		if r.Unmatched {
			fmt.Fprintf(w, "::%s file=%s::%s\n", notice, ghProp.Replace(r.Path), unmatchedMsg)
			continue
		}
		for _, f := range r.Errors {
			emit("error", r, f)
		}
		for _, f := range r.Warnings {
			emit(warning, r, f)
		}
	}
	if noData(rs) {
		level := "warning"
		if k.requireFiles {
			level = "error"
		}
		fmt.Fprintf(w, "::%s title=carpipe::%s\n", level, ghData.Replace(k.noDataMessage(rs)))
	}
	_, err := fmt.Fprintln(w, k.line(rs))
	return err
}

// The JUnit report follows the common JUnit XSD (testdata/junit/junit.xsd):
// testsuite carries tests, failures, errors and time; testsuites has no
// skipped. Each file is a test case.
type junitSuites struct {
	XMLName  xml.Name   `xml:"testsuites"`
	Name     string     `xml:"name,attr"`
	Tests    int        `xml:"tests,attr"`
	Failures int        `xml:"failures,attr"`
	Errors   int        `xml:"errors,attr"`
	Time     string     `xml:"time,attr"`
	Suites   []junitSet `xml:"testsuite"`
}

type junitSet struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Errors   int         `xml:"errors,attr"`
	Skipped  int         `xml:"skipped,attr"`
	Time     string      `xml:"time,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Failure   *junitFailure `xml:"failure,omitempty"`
	Skipped   *junitFailure `xml:"skipped,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr,omitempty"`
	Text    string `xml:",chardata"`
}

func writeJUnit(w io.Writer, rs []engine.Report, k verdict) error {
	set := junitSet{Name: "carpipe validate", Tests: len(rs), Time: fmt.Sprintf("%.3f", k.took.Seconds())}
	for _, r := range rs {
		tc := junitCase{Name: name(r), Classname: "carpipe." + r.FileType}
		var warnings, out strings.Builder
		for _, f := range r.Warnings {
			fmt.Fprintf(&warnings, "%s%s\n", where(f), f.Message)
			fmt.Fprintf(&out, "warning: %s%s\n", where(f), f.Message)
		}
		switch {
		case r.Unmatched && k.strict:
			tc.Classname = "carpipe.unmatched"
			tc.Failure = &junitFailure{Message: unmatchedMsg + " (--strict)", Type: "unmatched"}
		case r.Unmatched:
			tc.Classname = "carpipe.unmatched"
			tc.Skipped = &junitFailure{Message: unmatchedMsg}
			set.Skipped++
		case !r.Valid():
			var b strings.Builder
			for _, f := range r.Errors {
				fmt.Fprintf(&b, "%s%s\n", where(f), f.Message)
			}
			if r.Dropped > 0 {
				fmt.Fprintf(&b, "... and %d more errors\n", r.Dropped)
			}
			tc.Failure = &junitFailure{Message: fmt.Sprintf("%d errors in %d records", len(r.Errors)+r.Dropped, r.Records), Type: "invalid", Text: b.String()}
		case k.fails(r):
			tc.Failure = &junitFailure{Message: fmt.Sprintf("%d warnings (--strict)", len(r.Warnings)), Type: "warning", Text: warnings.String()}
		}
		if tc.Failure != nil {
			set.Failures++
		}
		// Warnings a failure does not already carry go to the output.
		if tc.Failure == nil || tc.Failure.Type != "warning" {
			tc.SystemOut = out.String()
		}
		set.Cases = append(set.Cases, tc)
	}
	// With --require-files, a report without data files fails as the exit
	// code does.
	if noData(rs) && k.requireFiles {
		set.Tests++
		set.Failures++
		set.Cases = append(set.Cases, junitCase{Name: "data files", Classname: "carpipe",
			Failure: &junitFailure{Message: k.noDataMessage(rs), Type: "no-data"}})
	}
	doc := junitSuites{Name: "carpipe", Tests: set.Tests, Failures: set.Failures, Errors: set.Errors, Time: set.Time, Suites: []junitSet{set}}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}
