// Package config reads carpipe's YAML config file. It checks the file's own
// structure and keeps each input and output entry as a yaml node, which the
// plugin that owns the entry decodes strictly with Config.Decode.
package config

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Pos is a place in a config file.
type Pos struct {
	File      string
	Line, Col int
}

// String returns "file:line:col", leaving out the parts that are unknown.
func (p Pos) String() string {
	var parts []string
	if p.File != "" {
		parts = append(parts, p.File)
	}
	if p.Line > 0 {
		parts = append(parts, strconv.Itoa(p.Line))
		if p.Col > 0 {
			parts = append(parts, strconv.Itoa(p.Col))
		}
	}
	return strings.Join(parts, ":")
}

// Problem is one thing wrong with a config file.
type Problem struct {
	Pos Pos
	Msg string

	unknownKey bool // a key no target has, for ValuesDecoded
}

func (p Problem) Error() string {
	if s := p.Pos.String(); s != "" {
		return s + ": " + p.Msg
	}
	return p.Msg
}

// Problems lets a user fix every mistake in one go rather than one per run.
type Problems []Problem

// Error lists the problems one per line, in file order.
func (ps Problems) Error() string {
	sorted := append(Problems(nil), ps...)
	sorted.sortByPos()
	lines := make([]string, len(sorted))
	for i, p := range sorted {
		lines[i] = p.Error()
	}
	return strings.Join(lines, "\n")
}

// Err returns nil when there are no problems, so callers can return it as is.
func (ps Problems) Err() error {
	if len(ps) == 0 {
		return nil
	}
	return ps
}

func (ps Problems) sortByPos() {
	slices.SortStableFunc(ps, func(a, b Problem) int {
		return cmp.Or(cmp.Compare(a.Pos.Line, b.Pos.Line), cmp.Compare(a.Pos.Col, b.Pos.Col))
	})
}

// Plugin is one entry of inputs or outputs. Its keys beyond name and type
// belong to the plugin, so only the plugin's Decode can check them.
type Plugin struct {
	Name, Type string
	Pos        Pos        // position of the entry's mapping
	Node       *yaml.Node // the entry's mapping, with ${...} expanded where possible
	// Unset holds the entry's failed ${VAR} references. They only matter to
	// commands that use the entry, so Load does not fail on them; Decode does.
	Unset Problems

	kind string // "input" or "output", for messages
}

// Config is a loaded config file.
type Config struct {
	Path string // absolute path of the file
	// Dir is the file's folder: a relative path written in the file is
	// relative to it, so the file means the same wherever carpipe runs.
	Dir string
	// WorkDir is the working directory: a relative path that comes from
	// an environment variable (FILE_DIRECTORY=./inbox) is relative to it,
	// as it is for every other program the variable is given to.
	WorkDir string
	Version int
	Name    string
	Schemas string // absolute
	Inputs  []Plugin
	Outputs []Plugin

	fromEnv map[*yaml.Node]bool // scalars whose value starts with a variable's
}

// Lookup finds an environment variable; os.LookupEnv in production.
type Lookup func(string) (string, bool)

// Load reads and checks a config file. With problems it returns both the
// config, as far as it could be read, and every problem as Problems. A nil
// env means os.LookupEnv.
func Load(path string, env Lookup) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data, env)
}

// Parse is Load on data already read from path. Problems name path as
// given; Config.Path is made absolute.
func Parse(path string, data []byte, env Lookup) (*Config, error) {
	if env == nil {
		env = os.LookupEnv
	}
	wd, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	c := &Config{WorkDir: wd, fromEnv: map[*yaml.Node]bool{}}
	if path == "" {
		c.Dir = wd
	} else {
		abs, err := filepath.Abs(path)
		if err != nil {
			return nil, err
		}
		c.Path, c.Dir = abs, filepath.Dir(abs)
	}
	c.Schemas = filepath.Join(c.Dir, "schemas")
	l := &loader{file: path, env: env, fromEnv: c.fromEnv}
	l.load(c, data)
	l.probs.sortByPos()
	return c, l.probs.Err()
}

var (
	topKeys   = []string{"inputs", "name", "outputs", "schemas", "version"}
	validName = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)
	lineError = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)
)

type loader struct {
	file    string
	env     Lookup
	probs   Problems
	fromEnv map[*yaml.Node]bool
}

func (l *loader) pos(n *yaml.Node) Pos { return Pos{File: l.file, Line: n.Line, Col: n.Column} }

func (l *loader) add(n *yaml.Node, format string, args ...any) {
	l.probs = append(l.probs, Problem{Pos: l.pos(n), Msg: fmt.Sprintf(format, args...)})
}

func (l *loader) syntax(err error) {
	// yaml.v3 leaves out the line when it is the first one.
	p := Problem{Pos: Pos{File: l.file, Line: 1}, Msg: strings.TrimPrefix(err.Error(), "yaml: ")}
	if m := lineError.FindStringSubmatch(err.Error()); m != nil {
		p.Pos.Line, _ = strconv.Atoi(m[1])
		p.Msg = m[2]
	}
	l.probs = append(l.probs, p)
}

func (l *loader) load(c *Config, data []byte) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err == nil {
		var more yaml.Node
		if err := dec.Decode(&more); err == nil {
			l.add(&more, "config file must hold a single YAML document")
		} else if !errors.Is(err, io.EOF) {
			l.syntax(err)
		}
	} else if !errors.Is(err, io.EOF) {
		l.syntax(err)
		return
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind == yaml.ScalarNode && scalar(doc.Content[0]) == "" {
		l.probs = append(l.probs, Problem{Pos: Pos{File: l.file}, Msg: "config file is empty"})
		return
	}
	l.structure(&doc)
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		l.add(root, "config must be a mapping, not %s", describeNode(root))
		return
	}
	got := map[string]*yaml.Node{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Kind != yaml.ScalarNode || got[k.Value] != nil {
			continue // reported by structure
		}
		got[k.Value] = k
		switch k.Value {
		case "version":
			if l.expandTree(v, nil) {
				c.Version = l.version(v)
			}
		case "name":
			if l.expandTree(v, nil) && l.wantString(v, "name") {
				if c.Name = scalar(v); c.Name == "" {
					l.add(v, "name must not be empty")
				}
			}
		case "schemas":
			if l.expandTree(v, nil) && l.wantString(v, "schemas") && scalar(v) != "" {
				c.Schemas = resolvePath(c.base(l.fromEnv[v]), v.Value)
			}
		case "inputs":
			c.Inputs = l.plugins(v, "input")
		case "outputs":
			c.Outputs = l.plugins(v, "output")
		default:
			l.add(k, "unknown key %q; known keys: %s", k.Value, strings.Join(topKeys, ", "))
		}
	}
	for _, key := range []string{"version", "name"} {
		if got[key] == nil {
			l.add(root, "missing required key %q", key)
		}
	}
}

// structure reports what yaml.v3 accepts into a Node but a config must not
// have: duplicate keys, non-scalar keys and aliases.
func (l *loader) structure(n *yaml.Node) {
	switch n.Kind {
	case yaml.AliasNode:
		l.add(n, "YAML aliases (*%s) are not supported", n.Value)
		return
	case yaml.MappingNode:
		first := map[string]*yaml.Node{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind != yaml.ScalarNode {
				l.add(k, "mapping keys must be plain strings, not %s", describeNode(k))
				continue
			}
			if f := first[k.Value]; f != nil {
				l.add(k, "duplicate key %q (first at line %d)", k.Value, f.Line)
				continue
			}
			first[k.Value] = k
		}
	}
	for i, c := range n.Content {
		if n.Kind != yaml.MappingNode || i%2 == 1 { // values only; keys are checked above
			l.structure(c)
		}
	}
}

func (l *loader) version(v *yaml.Node) int {
	var n int
	if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!int" || v.Decode(&n) != nil {
		l.add(v, "version must be an integer")
		return 0
	}
	if n != 1 {
		l.add(v, "unsupported config version %d; this carpipe reads version 1", n)
	}
	return n
}

func (l *loader) wantString(v *yaml.Node, what string) bool {
	if v.Kind != yaml.ScalarNode {
		l.add(v, "%s must be a string, not %s", what, describeNode(v))
		return false
	}
	return true
}

// plugins reads the list under inputs or outputs; kind is "input" or "output".
func (l *loader) plugins(list *yaml.Node, kind string) []Plugin {
	if list.Kind == yaml.ScalarNode && list.ShortTag() == "!!null" {
		return nil
	}
	if list.Kind != yaml.SequenceNode {
		l.add(list, "%ss must be a list, not %s", kind, describeNode(list))
		return nil
	}
	var out []Plugin
	first := map[string]*yaml.Node{}
	for i, n := range list.Content {
		if n.Kind != yaml.MappingNode {
			l.add(n, "%s #%d must be a mapping, not %s", kind, i+1, describeNode(n))
			continue
		}
		p := Plugin{Pos: l.pos(n), Node: n, kind: kind}
		label := fmt.Sprintf("%s #%d", kind, i+1)
		var name, typ *yaml.Node
		nameOK, typeOK := true, true
		for j := 0; j+1 < len(n.Content); j += 2 {
			k, v := n.Content[j], n.Content[j+1]
			switch {
			// Load checks name and type, so their variables can't wait.
			case k.Value == "name" && name == nil:
				name, nameOK = v, l.expandTree(v, nil)
			case k.Value == "type" && typ == nil:
				typ, typeOK = v, l.expandTree(v, nil)
			default:
				l.expandTree(v, &p.Unset)
			}
		}
		switch {
		case !nameOK: // already reported
		case name == nil || scalar(name) == "" && name.Kind == yaml.ScalarNode:
			l.add(n, "%s has no name", label)
		case !l.wantString(name, "name of "+label): // reports it
		case !validName.MatchString(name.Value):
			l.add(name, "invalid %s name: use only letters, digits, '_', '.' and '-'", kind)
		case first[name.Value] != nil:
			l.add(name, "duplicate %s name %q (first at line %d)", kind, name.Value, first[name.Value].Line)
		default:
			first[name.Value] = name
			p.Name = name.Value
			label = fmt.Sprintf("%s %q", kind, p.Name)
		}
		switch {
		case !typeOK: // already reported
		case typ == nil || scalar(typ) == "" && typ.Kind == yaml.ScalarNode:
			l.add(n, "%s has no type", label)
		case l.wantString(typ, "type of "+label):
			p.Type = typ.Value
		}
		out = append(out, p)
	}
	return out
}

// expandTree expands variables in every scalar value under n and reports
// whether all of them resolved. Failed lookups go to deferred when it is not
// nil; mistakes in the file itself always go to l.
func (l *loader) expandTree(n *yaml.Node, deferred *Problems) bool {
	ok := true
	switch n.Kind {
	case yaml.ScalarNode:
		if !strings.Contains(n.Value, "$") {
			return true
		}
		v, errs, fromEnv := expand(n.Value, l.env)
		if fromEnv {
			l.fromEnv[n] = true
		}
		for _, e := range errs {
			p := Problem{Pos: l.pos(n), Msg: e.msg}
			if e.env && deferred != nil {
				*deferred = append(*deferred, p)
			} else {
				l.probs = append(l.probs, p)
			}
		}
		n.Value = v
		if n.Style == 0 {
			// A plain scalar gets its type from what it now says, so that
			// port: ${PORT:-5432} is an int. A word like "null" from the
			// environment stays a string rather than vanishing.
			n.Tag = ""
			if v != "" && n.ShortTag() == "!!null" {
				n.Tag = "!!str"
			}
		}
		return len(errs) == 0
	case yaml.MappingNode:
		for i := 1; i < len(n.Content); i += 2 {
			ok = l.expandTree(n.Content[i], deferred) && ok
		}
	case yaml.SequenceNode:
		for _, c := range n.Content {
			ok = l.expandTree(c, deferred) && ok
		}
	}
	return ok
}

// scalar is a scalar's text, with null as "".
func scalar(n *yaml.Node) string {
	if n.Kind != yaml.ScalarNode || n.ShortTag() == "!!null" {
		return ""
	}
	return n.Value
}

// describeNode names a node's kind for messages without showing its value,
// which may have come from a secret.
func describeNode(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	switch n.ShortTag() {
	case "!!null":
		return "empty"
	case "!!int", "!!float":
		return "a number"
	case "!!bool":
		return "a boolean"
	}
	return "a string"
}

// base is what a relative path is relative to: the working directory
// when the path comes from the environment, else the config's folder.
func (c *Config) base(fromEnv bool) string {
	if fromEnv {
		return c.WorkDir
	}
	return c.Dir
}

// resolvePath makes p absolute against dir, leaving alone "-" (stdin or
// stdout) and URLs.
func resolvePath(dir, p string) string {
	if p == "" || p == "-" || strings.Contains(p, "://") || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}
