package main

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/carpipe/carpipe/engine"
	"github.com/carpipe/carpipe/plugins"
	"github.com/carpipe/carpipe/schemas"
)

func (c *cli) validateCmd() *cobra.Command {
	var schemasDir string
	var strict, verbose bool
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
			return c.validate(cmd, paths, schemasDir, out.value, strict, verbose, workers)
		})
	c.configFlag(cmd)
	f := cmd.Flags()
	f.StringVar(&schemasDir, "schemas", "", "schemas `DIR` (default: the config's)")
	f.BoolVar(&strict, "strict", false, "unmatched files count as invalid")
	f.BoolVarP(&verbose, "v", "v", false, "text: list valid files too")
	f.IntVar(&workers, "workers", runtime.NumCPU(), "files read at once")
	out = formatFlag(cmd, "text", "json", "github", "junit")
	return cmd
}

func (c *cli) validate(cmd *cobra.Command, paths []string, dir, format string, strict, verbose bool, workers int) error {
	write := formats[format]
	given := cmd.Flags().Changed
	switch {
	case verbose && format != "text":
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
	set, err := schemas.Load(dir, schemas.Options{})
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
	reports := engine.Validate(c.ctx, set, srcs, workers)
	if err := write(c.stdout, reports, verbose); err != nil {
		return err
	}
	for _, r := range reports {
		if (!r.Unmatched && !r.Valid()) || (r.Unmatched && strict) {
			return errPartial
		}
	}
	return nil
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

type summary struct {
	Files     int `json:"files"`
	Valid     int `json:"valid"`
	Invalid   int `json:"invalid"`
	Unmatched int `json:"unmatched"`
}

func summarize(rs []engine.Report) summary {
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
	}
	return s
}

// name is how a report names its file: input:path for config inputs.
func name(r engine.Report) string {
	if r.Input != "" {
		return r.Input + ":" + r.Path
	}
	return r.Path
}

var formats = map[string]func(io.Writer, []engine.Report, bool) error{
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

func writeText(w io.Writer, rs []engine.Report, verbose bool) error {
	for _, r := range rs {
		switch {
		case r.Unmatched:
			fmt.Fprintf(w, "%s: unmatched (no file type claims this name)\n", name(r))
			continue
		case r.Valid() && len(r.Warnings) == 0:
			if verbose {
				fmt.Fprintf(w, "%s: valid (%s, %d records)\n", name(r), r.FileType, r.Records)
			}
			continue
		case r.Valid():
			fmt.Fprintf(w, "%s: valid (%s, %d records)\n", name(r), r.FileType, r.Records)
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
	s := summarize(rs)
	_, err := fmt.Fprintf(w, "%d files: %d valid, %d invalid, %d unmatched\n", s.Files, s.Valid, s.Invalid, s.Unmatched)
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

func writeJSON(w io.Writer, rs []engine.Report, _ bool) error {
	doc := struct {
		Files   []jsonFile `json:"files"`
		Summary summary    `json:"summary"`
	}{Files: make([]jsonFile, len(rs)), Summary: summarize(rs)}
	for i, r := range rs {
		jf := jsonFile{Path: r.Path, Input: r.Input, Valid: r.Valid(), Unmatched: r.Unmatched, Records: r.Records,
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

func writeGitHub(w io.Writer, rs []engine.Report, _ bool) error {
	emit := func(level string, r engine.Report, f engine.Finding) {
		props := "file=" + ghProp.Replace(r.Path)
		if f.Line > 0 {
			props += fmt.Sprintf(",line=%d,col=%d", f.Line, f.Col)
		}
		props += ",title=" + ghProp.Replace("carpipe "+r.FileType)
		fmt.Fprintf(w, "::%s %s::%s\n", level, props, ghData.Replace(where(f)+f.Message))
	}
	for _, r := range rs {
		if r.Unmatched {
			fmt.Fprintf(w, "::notice file=%s::%s\n", ghProp.Replace(r.Path), "no file type claims this name")
			continue
		}
		for _, f := range r.Errors {
			emit("error", r, f)
		}
		for _, f := range r.Warnings {
			emit("warning", r, f)
		}
	}
	s := summarize(rs)
	_, err := fmt.Fprintf(w, "%d files: %d valid, %d invalid, %d unmatched\n", s.Files, s.Valid, s.Invalid, s.Unmatched)
	return err
}

type junitSuites struct {
	XMLName  xml.Name   `xml:"testsuites"`
	Name     string     `xml:"name,attr"`
	Tests    int        `xml:"tests,attr"`
	Failures int        `xml:"failures,attr"`
	Skipped  int        `xml:"skipped,attr"`
	Suites   []junitSet `xml:"testsuite"`
}

type junitSet struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Skipped  int         `xml:"skipped,attr"`
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

func writeJUnit(w io.Writer, rs []engine.Report, _ bool) error {
	set := junitSet{Name: "carpipe validate", Tests: len(rs)}
	for _, r := range rs {
		tc := junitCase{Name: name(r), Classname: "carpipe." + r.FileType}
		switch {
		case r.Unmatched:
			tc.Classname = "carpipe.unmatched"
			tc.Skipped = &junitFailure{Message: "no file type claims this name"}
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
			set.Failures++
		}
		for _, f := range r.Warnings {
			tc.SystemOut += "warning: " + where(f) + f.Message + "\n"
		}
		set.Cases = append(set.Cases, tc)
	}
	doc := junitSuites{Name: "carpipe", Tests: set.Tests, Failures: set.Failures, Skipped: set.Skipped, Suites: []junitSet{set}}
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
