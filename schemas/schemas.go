// Package schemas turns a folder of NAME.schema.json files into file types:
// each routes files by name, and validates and keys their records.
package schemas

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/carpipe/carpipe/plugins"
	"github.com/carpipe/carpipe/schemas/fastcheck" // also makes "date-time" strict RFC 3339
	"github.com/xeipuuv/gojsonschema"
)

// Suffix names a schema file; what comes before it is the file type's name.
const Suffix = ".schema.json"

// Record handling on invalid records.
const (
	RejectFile = "reject_file"
	SkipRecord = "skip_record"
)

// Type is one file type.
type Type struct {
	name       string
	File       string // the schema file
	Match      *regexp.Regexp
	Records    string // JSON Pointer to the records array; "" is the root
	Key        []string
	Time       string
	OnInvalid  string
	Properties []Property
	schema     *gojsonschema.Schema
	fast       *fastcheck.Checker // nil: gojsonschema validates every record
	workers    int
	batch      int
}

// Property is a top-level property of the record schema.
type Property struct {
	Name   string
	Type   string // JSON Schema type, "" when open
	Format string
}

var _ plugins.FileType = (*Type)(nil)

// Name is the file type's name.
func (t *Type) Name() string { return t.name }

// RejectFile reports whether one invalid record fails the file.
func (t *Type) RejectFile() bool { return t.OnInvalid != SkipRecord }

// Set is every file type of a schemas folder.
type Set struct {
	Dir   string
	Types []*Type // sorted by name
}

var _ plugins.Router = (*Set)(nil)

// Options tune decoding.
type Options struct {
	Workers   int // records validated in parallel within a file; default: CPUs
	BatchSize int // records per batch; default 1000
}

// Load compiles every NAME.schema.json in dir. It reports every broken
// schema, not only the first.
func Load(dir string, o Options) (*Set, error) {
	if o.Workers <= 0 {
		o.Workers = runtime.NumCPU()
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 1000
	}
	names, err := filepath.Glob(filepath.Join(dir, "*"+Suffix))
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		if _, err := os.Stat(dir); err != nil {
			return nil, fmt.Errorf("schemas folder: %w", err)
		}
		return nil, fmt.Errorf("schemas folder %s holds no *%s file", dir, Suffix)
	}
	sort.Strings(names)
	set := &Set{Dir: dir}
	var errs []error
	for _, n := range names {
		t, err := compile(dir, filepath.Base(n))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		t.workers, t.batch = o.Workers, o.BatchSize
		set.Types = append(set.Types, t)
	}
	return set, errors.Join(errs...)
}

// Route finds the type whose pattern matches a file's base name.
func (s *Set) Route(base string) (plugins.FileType, *time.Time, error) {
	t, ts, err := s.Find(base)
	if t == nil {
		return nil, nil, err
	}
	return t, ts, err
}

// Find is Route with the concrete type.
func (s *Set) Find(base string) (*Type, *time.Time, error) {
	var found []*Type
	for _, t := range s.Types {
		if t.Match.MatchString(base) {
			found = append(found, t)
		}
	}
	switch len(found) {
	case 0:
		return nil, nil, nil
	case 1:
		return found[0], found[0].fileTime(base), nil
	}
	names := make([]string, len(found))
	for i, t := range found {
		names[i] = t.name
	}
	return nil, nil, fmt.Errorf("%w: file name %q matches several file types: %s", plugins.ErrAmbiguous, base, strings.Join(names, ", "))
}

func (t *Type) fileTime(base string) *time.Time {
	i := t.Match.SubexpIndex("timestamp")
	if i < 0 {
		return nil
	}
	m := t.Match.FindStringSubmatch(base)
	sec, err := strconv.ParseInt(m[i], 10, 64)
	if err != nil {
		return nil
	}
	ts := time.Unix(sec, 0).UTC()
	return &ts
}

// meta is the x-carpipe block.
type meta struct {
	Match     *string  `json:"match"`
	Records   *string  `json:"records"`
	Key       []string `json:"key"`
	Time      string   `json:"time"`
	OnInvalid string   `json:"on_invalid_record"`
}

var unsupported = map[string]string{
	"https://json-schema.org/draft/2019-09/schema": "2019-09",
	"https://json-schema.org/draft/2020-12/schema": "2020-12",
}

func compile(dir, file string) (*Type, error) {
	name := strings.TrimSuffix(file, Suffix)
	fail := func(format string, a ...any) error {
		return fmt.Errorf("schema %s: %s", filepath.Join(dir, file), fmt.Sprintf(format, a...))
	}
	data, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		return nil, fail("%v", err)
	}
	var doc map[string]any
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	if err := d.Decode(&doc); err != nil {
		return nil, fail("not a JSON object: %v", err)
	}
	if v, ok := doc["$schema"].(string); ok {
		if draft, bad := unsupported[strings.TrimSuffix(v, "#")]; bad {
			return nil, fail("$schema names draft %s; carpipe validates draft-07 (also 04 and 06) and would silently ignore %s keywords: use \"http://json-schema.org/draft-07/schema#\"", draft, draft)
		}
	}
	if err := checkRefs(dir, file, doc, map[string]bool{}); err != nil {
		return nil, fail("%v", err)
	}
	t := &Type{name: name, File: filepath.Join(dir, file)}
	if err := t.readMeta(doc); err != nil {
		return nil, fail("x-carpipe: %v", err)
	}
	t.Properties = properties(doc)
	if err := t.checkFields(doc); err != nil {
		return nil, fail("x-carpipe: %v", err)
	}
	sl := gojsonschema.NewSchemaLoader()
	sl.Draft = gojsonschema.Draft7
	sl.AutoDetect = true
	// Refs resolve only inside the schemas folder: http.Dir refuses "..".
	loader := gojsonschema.NewReferenceLoaderFileSystem("file:///"+file, http.Dir(dir))
	s, err := sl.Compile(loader)
	if err != nil {
		return nil, fail("%v", err)
	}
	t.schema = s
	t.fast = fastcheck.Compile(doc, file)
	return t, nil
}

func (t *Type) readMeta(doc map[string]any) error {
	var m meta
	if raw, ok := doc["x-carpipe"]; ok {
		b, _ := json.Marshal(raw)
		d := json.NewDecoder(bytes.NewReader(b))
		d.DisallowUnknownFields()
		if err := d.Decode(&m); err != nil {
			return err
		}
	}
	pattern := `^` + regexp.QuoteMeta(t.name) + `_(?P<timestamp>\d+)\.json$`
	if m.Match != nil {
		pattern = *m.Match
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return fmt.Errorf("match: %v", err)
	}
	t.Match = re
	if m.Records != nil {
		t.Records = *m.Records
		if t.Records != "" && !strings.HasPrefix(t.Records, "/") {
			return fmt.Errorf("records %q is not a JSON Pointer: it must be \"\" or start with \"/\"", t.Records)
		}
	}
	t.Key, t.Time = m.Key, m.Time
	switch m.OnInvalid {
	case "", RejectFile:
		t.OnInvalid = RejectFile
	case SkipRecord:
		t.OnInvalid = SkipRecord
	default:
		return fmt.Errorf("on_invalid_record %q: want %s or %s", m.OnInvalid, RejectFile, SkipRecord)
	}
	return nil
}

// checkFields refuses key and time fields the schema does not declare, when
// it declares its properties: a typo there would key every record on null.
func (t *Type) checkFields(doc map[string]any) error {
	seen := map[string]bool{}
	for _, k := range t.Key {
		if k == "" || seen[k] {
			return fmt.Errorf("key field %q is empty or repeated", k)
		}
		seen[k] = true
	}
	props, ok := doc["properties"].(map[string]any)
	if !ok {
		return nil
	}
	for _, f := range append(append([]string{}, t.Key...), t.Time) {
		if _, declared := props[f]; f != "" && !declared {
			return fmt.Errorf("field %q is not a property of the record schema", f)
		}
	}
	return nil
}

func properties(doc map[string]any) []Property {
	props, _ := doc["properties"].(map[string]any)
	out := make([]Property, 0, len(props))
	for name, v := range props {
		p := Property{Name: name}
		if m, ok := v.(map[string]any); ok {
			p.Type, _ = m["type"].(string)
			p.Format, _ = m["format"].(string)
		}
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// checkRefs makes sure compiling a schema reads nothing but files of the
// schemas folder: gojsonschema would fetch http refs and read file:// ones.
func checkRefs(dir, file string, v any, visited map[string]bool) error {
	visited[file] = true
	var fileRefs bool
	var absID string
	var walk func(v any) error
	walk = func(v any) error {
		switch x := v.(type) {
		case map[string]any:
			for k, c := range x {
				s, isStr := c.(string)
				switch {
				case k == "$ref" && isStr:
					target, err := localRef(dir, s)
					if err != nil {
						return err
					}
					if target != "" {
						fileRefs = true
						if !visited[target] {
							if err := checkRefFile(dir, target, visited); err != nil {
								return err
							}
						}
					}
				case (k == "$id" || k == "id") && isStr && strings.Contains(s, ":"):
					absID = s
				default:
					if err := walk(c); err != nil {
						return err
					}
				}
			}
		case []any:
			for _, c := range x {
				if err := walk(c); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := walk(v); err != nil {
		return err
	}
	if fileRefs && absID != "" {
		return fmt.Errorf("%s: $id %q would make relative $refs resolve outside the schemas folder; drop the $id or use \"#...\" refs", file, absID)
	}
	return nil
}

// localRef returns the schemas-folder file a $ref points to, "" for a ref
// inside the same document, or an error for anything else.
func localRef(dir, ref string) (string, error) {
	if strings.HasPrefix(ref, "#") {
		return "", nil
	}
	target, _, _ := strings.Cut(ref, "#")
	if strings.Contains(target, ":") || strings.HasPrefix(target, "/") || strings.Contains(target, "\\") {
		return "", fmt.Errorf("$ref %q is not a file in the schemas folder; carpipe never fetches schemas from the network or other folders", ref)
	}
	clean := path.Clean(target)
	if clean == ".." || strings.HasPrefix(clean, "../") {
		return "", fmt.Errorf("$ref %q leaves the schemas folder", ref)
	}
	if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(clean))); err != nil {
		return "", fmt.Errorf("$ref %q: %v", ref, err)
	}
	return clean, nil
}

func checkRefFile(dir, file string, visited map[string]bool) error {
	data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(file)))
	if err != nil {
		return err
	}
	var doc any
	if err := json.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("%s: %v", file, err)
	}
	return checkRefs(dir, file, doc, visited)
}
