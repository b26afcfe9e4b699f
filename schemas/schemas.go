// Package schemas turns a folder of NAME.schema.json files into file types:
// each routes files by name, and validates and keys their records.
//
// A valid record is one both databases store and query: besides its
// schema, it holds no U+0000 and no unpaired surrogate in a string or a
// member name, no number beyond PostgreSQL's numeric, no date-time (its
// time, or a value "format": "date-time" applies to) outside years 0001 to
// 9999 in UTC or with an offset PostgreSQL cannot read, and its key fits
// PostgreSQL's index. It is an object, a row of its type's table (see
// Tables): a property that has an integer column holds an int64, and one
// that has a timestamp column a full RFC 3339 date-time. Anything else is
// the record's error, with a pointer, so that validate, skip_record and a
// load agree.
//
// A key is a JSON array of the key fields' values: strings as JSON, times
// as UTC microseconds, numbers by their exact value (see appendNumber),
// objects with sorted members.
package schemas

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/carpipe/carpipe/plugins"
	"github.com/carpipe/carpipe/schemas/fastcheck"
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
	Properties []Property // sorted by name
	Table      string     // x-carpipe.table; "" when not given
	cols       []plugins.Column
	declared   map[string]bool // the names in Properties
	digest     string
	schema     *gojsonschema.Schema
	fast       *fastcheck.Checker // nil: gojsonschema validates every record
	enums      *fastcheck.Enums   // large enums, which gojsonschema is not given
	dates      *dateCheck         // nil: no date-time but the type's time
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
	return LoadContext(context.Background(), dir, o)
}

// LoadContext is Load that gives up, with ctx's error, when ctx ends.
func LoadContext(ctx context.Context, dir string, o Options) (*Set, error) {
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
		t, err := compile(ctx, dir, filepath.Base(n))
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		t.workers, t.batch = o.Workers, o.BatchSize
		set.Types = append(set.Types, t)
	}
	if err := checkTables(set.Types); err != nil {
		errs = append(errs, err)
	}
	return set, errors.Join(errs...)
}

// Route finds the type whose pattern matches a file's base name. A name
// several types match is an error, with no type; so is one whose time is
// outside years 0001 to 9999, with its type.
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
		ts, err := found[0].fileTime(base)
		return found[0], ts, err
	}
	names := make([]string, len(found))
	for i, t := range found {
		names[i] = t.name
	}
	return nil, nil, fmt.Errorf("%w: file name %q matches several file types: %s", plugins.ErrAmbiguous, base, strings.Join(names, ", "))
}

// fileTime reads the unix seconds of the pattern's "timestamp" group.
func (t *Type) fileTime(base string) (*time.Time, error) {
	i := t.Match.SubexpIndex("timestamp")
	if i < 0 {
		return nil, nil
	}
	m := t.Match.FindStringSubmatch(base)
	if m[i] == "" {
		return nil, nil
	}
	sec, err := strconv.ParseInt(m[i], 10, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return nil, nil // not a number: the name has no time
	}
	if err != nil || sec < minTime.Unix() || sec > maxTime.Unix() {
		return nil, fmt.Errorf("file name %s: its time %s (unix seconds) is outside years 0001 to 9999, which the databases store", show(base), show(m[i]))
	}
	ts := time.Unix(sec, 0).UTC()
	return &ts, nil
}

// meta is the x-carpipe block.
type meta struct {
	Match     *string  `json:"match"`
	Records   *string  `json:"records"`
	Key       []string `json:"key"`
	Time      string   `json:"time"`
	OnInvalid string   `json:"on_invalid_record"`
	Table     *string  `json:"table"`
}

// drafts are the meta-schemas carpipe validates against, by their URL
// without scheme and "#".
var drafts = map[string]gojsonschema.Draft{
	"json-schema.org/draft-04/schema": gojsonschema.Draft4,
	"json-schema.org/draft-06/schema": gojsonschema.Draft6,
	"json-schema.org/draft-07/schema": gojsonschema.Draft7,
}

var laterDraft = regexp.MustCompile(`^json-schema\.org/draft/(\d{4}-\d{2})/schema$`)

// draftOf reads $schema: draft-07 when there is none. canon is the URL
// gojsonschema knows the draft by, "" without $schema. http or https,
// a trailing "#" and surrounding white space make no difference; anything
// else is refused, as its keywords would be silently ignored.
func draftOf(doc map[string]any) (d gojsonschema.Draft, canon string, err error) {
	v, ok := doc["$schema"]
	if !ok {
		return gojsonschema.Draft7, "", nil
	}
	s, ok := v.(string)
	if !ok {
		return 0, "", fmt.Errorf("$schema is %s, not a URL naming a draft", typed(v))
	}
	u := strings.TrimSuffix(strings.TrimSpace(s), "#")
	rest, ok := strings.CutPrefix(u, "http://")
	if !ok {
		rest, ok = strings.CutPrefix(u, "https://")
	}
	if d, known := drafts[rest]; ok && known {
		return d, "http://" + rest + "#", nil
	}
	if m := laterDraft.FindStringSubmatch(rest); ok && m != nil {
		return 0, "", fmt.Errorf("$schema %s names draft %s; carpipe validates draft-07 (also 04 and 06) and would silently ignore %s keywords: use \"http://json-schema.org/draft-07/schema#\"", show(s), m[1], m[1])
	}
	return 0, "", fmt.Errorf("$schema %s names no draft carpipe validates: use \"http://json-schema.org/draft-07/schema#\" (or draft-06, draft-04)", show(s))
}

// decodeDoc reads a schema document as gojsonschema does: numbers kept as
// written.
func decodeDoc(data []byte) (any, error) {
	var doc any
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	if err := d.Decode(&doc); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, at(data, se.Offset, err)
		}
		return nil, at(data, int64(len(data)), err)
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, at(data, d.InputOffset(), errors.New("data after the JSON document"))
	}
	return doc, nil
}

// syntaxError is a schema's syntax error at its line and column, as
// editors count them (a column is a count of characters).
type syntaxError struct {
	line, col int
	err       error
}

func (e *syntaxError) Error() string {
	return fmt.Sprintf("%d:%d: invalid JSON: %v", e.line, e.col, e.err)
}

func at(data []byte, off int64, err error) error {
	off = min(max(off, 0), int64(len(data)))
	before := data[:off]
	line := bytes.Count(before, []byte("\n")) + 1
	col := utf8.RuneCount(before[bytes.LastIndexByte(before, '\n')+1:]) + 1
	return &syntaxError{line, col, err}
}

func compile(ctx context.Context, dir, file string) (t *Type, err error) {
	name := strings.TrimSuffix(file, Suffix)
	fail := func(format string, a ...any) error {
		return fmt.Errorf("schema %s: %s", filepath.Join(dir, file), fmt.Sprintf(format, a...))
	}
	defer func() {
		if r := recover(); r != nil { // gojsonschema panics on some broken schemas
			t, err = nil, fail("gojsonschema cannot compile it: %v", r)
		}
	}()
	data, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		return nil, fail("%v", err)
	}
	v, err := decodeDoc(data)
	doc, isObj := v.(map[string]any)
	if err != nil || !isObj {
		var se *syntaxError
		if errors.As(err, &se) {
			return nil, fmt.Errorf("schema %s:%v", filepath.Join(dir, file), se)
		}
		return nil, fail("not a JSON object")
	}
	draft, canon, err := draftOf(doc)
	if err != nil {
		return nil, fail("%v", err)
	}
	// gojsonschema reads the files itself; some it must read rewritten.
	served := map[string][]byte{}
	rewrite := false
	if canon != "" && doc["$schema"] != canon {
		doc["$schema"], rewrite = canon, true
	}
	if err := checkRefs(dir, file, doc, map[string]bool{}, served); err != nil {
		return nil, fail("%v", err)
	}
	t = &Type{name: name, File: filepath.Join(dir, file)}
	if err := t.readMeta(doc); err != nil {
		return nil, fail("x-carpipe: %v", err)
	}
	t.Properties = properties(doc)
	t.declared = map[string]bool{}
	for _, p := range t.Properties {
		t.declared[p.Name] = true
	}
	t.cols = t.columns()
	sum := sha256.Sum256(data)
	t.digest = "sha256:" + hex.EncodeToString(sum[:])
	if err := t.checkFields(doc); err != nil {
		return nil, fail("x-carpipe: %v", err)
	}
	given, enums, err := fastcheck.TakeEnums(ctx, doc)
	if err != nil {
		return nil, fail("%v", err)
	}
	if rewrite || enums != nil {
		b, err := json.Marshal(given)
		if err != nil {
			return nil, fail("%v", err)
		}
		served["/"+file] = b
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	sl := gojsonschema.NewSchemaLoader()
	sl.Draft = draft // $schema read exactly, above
	sl.AutoDetect = false
	// Refs resolve only inside the schemas folder: http.Dir refuses "..".
	loader := gojsonschema.NewReferenceLoaderFileSystem(fileURL(file), schemaFS{http.Dir(dir), served})
	s, err := sl.Compile(loader)
	if err != nil {
		return nil, fail("%v", err)
	}
	g, err := mirror(s)
	if err != nil {
		return nil, fail("%v", err)
	}
	if cyc := loop(g); cyc != nil {
		// From the first place in name order, so that the message is one.
		var at []string
		for _, n := range cyc[1:] {
			at = append(at, n.where("file:///"+file))
		}
		first := slices.Index(at, slices.Min(at))
		at = append(at[first:], at[:first]...)
		at = append(at, at[0])
		return nil, fail("$ref cycle %s applies the same subschemas to one value round and round, so validation would never end; recursion must go through properties or items", strings.Join(at, " -> "))
	}
	t.schema, t.enums = s, enums
	t.dates = newDateCheck(g, t.Time)
	t.fast = fastcheck.Compile(doc, file)
	return t, nil
}

// fileURL is the URL gojsonschema reads file by. It unescapes the path
// with url.QueryUnescape, so "+" must be escaped along with "%" and "#".
func fileURL(file string) string {
	return "file:///" + strings.ReplaceAll(url.PathEscape(file), "+", "%2B")
}

// schemaFS is the schemas folder as gojsonschema reads it, some files
// served rewritten: by their path, with a leading "/".
type schemaFS struct {
	dir    http.Dir
	served map[string][]byte
}

func (f schemaFS) Open(name string) (http.File, error) {
	if b, ok := f.served[name]; ok {
		return memFile{bytes.NewReader(b)}, nil
	}
	return f.dir.Open(name)
}

type memFile struct{ *bytes.Reader }

func (memFile) Close() error                       { return nil }
func (memFile) Readdir(int) ([]fs.FileInfo, error) { return nil, errors.New("not a folder") }
func (memFile) Stat() (fs.FileInfo, error)         { return nil, errors.New("no file info") }

func (t *Type) enumErrors(v any) []plugins.FieldError {
	var out []plugins.FieldError
	for _, f := range t.enums.Check(v) {
		out = append(out, fieldError(f.Path, enumMessage(f.Allowed, f.Value)))
	}
	return out
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
	if m.Table != nil {
		if err := checkTable(*m.Table); err != nil {
			return err
		}
		t.Table = *m.Table
	}
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

// checkFields refuses key fields the schema does not declare: the table's
// unique index is made of their columns. So is a time field, when the
// schema declares its properties: a typo there would leave every record
// without its time.
func (t *Type) checkFields(doc map[string]any) error {
	seen := map[string]bool{}
	for _, k := range t.Key {
		if k == "" || seen[k] {
			return fmt.Errorf("key field %q is empty or repeated", k)
		}
		seen[k] = true
		if !t.declared[k] {
			return fmt.Errorf("key field %q must be a declared property of the record schema", k)
		}
	}
	if _, ok := doc["properties"].(map[string]any); ok && t.Time != "" && !t.declared[t.Time] {
		return fmt.Errorf("time field %q is not a property of the record schema", t.Time)
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
// Files whose $schema gojsonschema would misread go to served, rewritten.
func checkRefs(dir, file string, v any, visited map[string]bool, served map[string][]byte) error {
	visited[file] = true
	var fileRefs bool
	var absID string
	var walk func(v any) error
	walk = func(v any) error {
		switch x := v.(type) {
		case map[string]any:
			for _, k := range slices.Sorted(maps.Keys(x)) {
				c := x[k]
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
							if err := checkRefFile(dir, target, visited, served); err != nil {
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
	// The file gojsonschema will open: it unescapes as a query does.
	target, err := url.QueryUnescape(target)
	if err != nil {
		return "", fmt.Errorf("$ref %q: %v", ref, err)
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

func checkRefFile(dir, file string, visited map[string]bool, served map[string][]byte) error {
	data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(file)))
	if err != nil {
		return err
	}
	doc, err := decodeDoc(data)
	if err != nil {
		return fmt.Errorf("%s: %v", file, err)
	}
	if m, ok := doc.(map[string]any); ok {
		_, canon, err := draftOf(m)
		if err != nil {
			return fmt.Errorf("%s: %v", file, err)
		}
		if canon != "" && m["$schema"] != canon {
			m["$schema"] = canon
			b, err := json.Marshal(m)
			if err != nil {
				return fmt.Errorf("%s: %v", file, err)
			}
			served["/"+file] = b
		}
	}
	if ptr, n := fastcheck.LargeEnum(doc); n > 0 {
		return fmt.Errorf("%s: enum at %s has %d values: carpipe checks enums of more than %d values only in the schema file itself", file, ptr, n, fastcheck.MaxEnum)
	}
	return checkRefs(dir, file, doc, visited, served)
}
