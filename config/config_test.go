package config

import (
	"errors"
	"io/fs"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// mapEnv is a Lookup over a fixed map, so tests never read the real
// environment.
func mapEnv(m map[string]string) Lookup {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

var noEnv = mapEnv(nil)

func TestPosAndProblemText(t *testing.T) {
	for _, tc := range []struct {
		pos  Pos
		want string
	}{
		{Pos{"c.yaml", 3, 5}, "c.yaml:3:5"},
		{Pos{"c.yaml", 3, 0}, "c.yaml:3"},
		{Pos{"c.yaml", 0, 0}, "c.yaml"},
		{Pos{"", 3, 5}, "3:5"},
		{Pos{"c.yaml", 0, 7}, "c.yaml"}, // a column means nothing without a line
		{Pos{}, ""},
	} {
		if got := tc.pos.String(); got != tc.want {
			t.Errorf("%#v.String() = %q, want %q", tc.pos, got, tc.want)
		}
	}
	if got := (Problem{Pos: Pos{"c.yaml", 2, 1}, Msg: "bad"}).Error(); got != "c.yaml:2:1: bad" {
		t.Errorf("Problem.Error() = %q", got)
	}
	if got := (Problem{Msg: "bad"}).Error(); got != "bad" {
		t.Errorf("Problem without position: Error() = %q", got)
	}

	ps := Problems{
		{Pos: Pos{"c.yaml", 9, 1}, Msg: "third"},
		{Pos: Pos{"c.yaml", 2, 7}, Msg: "second"},
		{Pos: Pos{"c.yaml", 2, 3}, Msg: "first"},
	}
	want := "c.yaml:2:3: first\nc.yaml:2:7: second\nc.yaml:9:1: third"
	if got := ps.Error(); got != want {
		t.Errorf("Problems.Error() =\n%s\nwant\n%s", got, want)
	}
	if ps[0].Msg != "third" {
		t.Error("Problems.Error() reordered its receiver")
	}
	if Problems(nil).Err() != nil || (Problems{}).Err() != nil {
		t.Error("Err() of no problems is not nil")
	}
	var got Problems
	if err := ps.Err(); !errors.As(err, &got) || len(got) != 3 {
		t.Errorf("Err() = %v, want the problems", err)
	}
}

func TestLoadValid(t *testing.T) {
	env := mapEnv(map[string]string{"POSTGRES_HOST": "db.local", "POSTGRES_PASS": "pw"})
	c, err := Load("testdata/valid.yaml", env)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	abs, _ := filepath.Abs("testdata/valid.yaml")
	dir := filepath.Dir(abs)
	if c.Path != abs || c.Dir != dir {
		t.Errorf("Path, Dir = %q, %q; want %q, %q", c.Path, c.Dir, abs, dir)
	}
	if want := filepath.Join(filepath.Dir(dir), "schemas"); c.Schemas != want {
		t.Errorf("Schemas = %q, want %q", c.Schemas, want)
	}
	if c.Version != 1 || c.Name != "car-submissions" {
		t.Errorf("Version, Name = %d, %q", c.Version, c.Name)
	}
	if len(c.Inputs) != 2 || len(c.Outputs) != 1 {
		t.Fatalf("got %d inputs, %d outputs; want 2, 1", len(c.Inputs), len(c.Outputs))
	}
	in, out := c.Inputs[0], c.Outputs[0]
	if in.Name != "inbox" || in.Type != "dir" || in.Pos != (Pos{"testdata/valid.yaml", 5, 5}) {
		t.Errorf("input = %q %q at %v", in.Name, in.Type, in.Pos)
	}
	if c.Inputs[1].Name != "archive" || out.Name != "warehouse" || out.Type != "postgres" || out.Pos.Line != 14 {
		t.Errorf("archive/warehouse = %+v / %+v", c.Inputs[1], out)
	}
	if len(in.Unset)+len(out.Unset) != 0 {
		t.Errorf("unexpected unset variables: %v %v", in.Unset, out.Unset)
	}

	var o struct {
		Host     string `yaml:"host"`
		Port     int    `yaml:"port"`
		Password string `yaml:"password" secret:"true"`
	}
	if err := c.Decode(out, &o); err != nil {
		t.Fatalf("Decode output: %v", err)
	}
	if o.Host != "db.local" || o.Port != 5432 || o.Password != "pw" {
		t.Errorf("output = %+v", o)
	}
	var i struct {
		Path      string `yaml:"path" carpipe:"path"`
		OnSuccess string `yaml:"on_success"`
		OnFailure string `yaml:"on_failure"`
	}
	if err := c.Decode(in, &i); err != nil {
		t.Fatalf("Decode input: %v", err)
	}
	if want := filepath.Join(dir, "inbox"); i.Path != want || i.OnSuccess != "move:processed" || i.OnFailure != "move:failed" {
		t.Errorf("input = %+v, want path %q", i, want)
	}
}

func TestLoadDefaults(t *testing.T) {
	c, err := Parse("conf/c.yaml", []byte("version: 1\nname: x\n"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	dir, _ := filepath.Abs("conf")
	if c.Dir != dir || c.Schemas != filepath.Join(dir, "schemas") {
		t.Errorf("Dir, Schemas = %q, %q", c.Dir, c.Schemas)
	}
	if c.Inputs != nil || c.Outputs != nil {
		t.Errorf("inputs, outputs = %v, %v; want none", c.Inputs, c.Outputs)
	}
	c, err = Parse("c.yaml", []byte("version: 1\nname: x\nschemas: /abs/schemas\ninputs: []\noutputs:\n"), noEnv)
	if err != nil || c.Schemas != "/abs/schemas" {
		t.Errorf("absolute schemas: %q, %v", c.Schemas, err)
	}
}

func TestLoadFileErrors(t *testing.T) {
	_, err := Load("testdata/missing.yaml", noEnv)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: err = %v, want fs.ErrNotExist", err)
	}

	c, err := Load("testdata/syntax.yaml", noEnv)
	// yaml.v3 reports the line of the context: the list under inputs.
	want := "testdata/syntax.yaml:3: did not find expected '-' indicator"
	if err == nil || err.Error() != want {
		t.Errorf("syntax error:\n got %v\nwant %s", err, want)
	}
	if c == nil || !strings.HasSuffix(c.Path, "syntax.yaml") {
		t.Errorf("config with a syntax error = %+v, want its Path at least", c)
	}

	c, err = Load("testdata/problems.yaml", noEnv)
	want = strings.Join([]string{
		`testdata/problems.yaml:1:10: unsupported config version 2; this carpipe reads version 1`,
		`testdata/problems.yaml:2:7: name must be a string, not a list`,
		`testdata/problems.yaml:3:1: unknown key "colour"; known keys: inputs, name, outputs, schemas, version`,
		`testdata/problems.yaml:7:11: duplicate input name "inbox" (first at line 5)`,
		`testdata/problems.yaml:10:5: duplicate key "path" (first at line 9)`,
		`testdata/problems.yaml:11:5: input #3 has no name`,
		`testdata/problems.yaml:12:5: input #4 has no type`,
		`testdata/problems.yaml:12:11: invalid input name: use only letters, digits, '_', '.' and '-'`,
		`testdata/problems.yaml:13:10: outputs must be a list, not a string`,
	}, "\n")
	if err == nil || err.Error() != want {
		t.Errorf("problems:\n got %v\nwant %s", err, want)
	}
	if c == nil || c.Version != 2 || len(c.Inputs) != 4 || c.Inputs[0].Name != "inbox" || c.Inputs[1].Name != "" {
		t.Errorf("config with problems = %+v, want what could be read", c)
	}
}

func TestLoadProblems(t *testing.T) {
	env := mapEnv(map[string]string{"EMPTY": "", "V": "1"})
	for _, tc := range []struct {
		name, yaml string
		want       []string // every problem, in order
	}{
		{"empty file", "", []string{"c.yaml: config file is empty"}},
		{"only a comment", "# nothing\n", []string{"c.yaml: config file is empty"}},
		{"syntax error on line 1", "\tversion: 1\n", []string{
			"c.yaml:1: found character that cannot start any token"}},
		{"syntax error", "version: 1\nname: x\n  bad: indent\n", []string{
			"c.yaml:3: mapping values are not allowed in this context"}},
		{"root is a list", "- version: 1\n", []string{"c.yaml:1:1: config must be a mapping, not a list"}},
		{"two documents", "version: 1\nname: x\n---\nname: y\n", []string{
			"c.yaml:3:1: config file must hold a single YAML document"}},
		{"missing version and name", "inputs: []\n", []string{
			`c.yaml:1:1: missing required key "version"`,
			`c.yaml:1:1: missing required key "name"`}},
		{"unknown key", "version: 1\nname: x\ninput: []\n", []string{
			`c.yaml:3:1: unknown key "input"; known keys: inputs, name, outputs, schemas, version`}},
		{"key with a variable is not expanded", "version: 1\nname: x\n${V}: 1\n", []string{
			`c.yaml:3:1: unknown key "${V}"; known keys: inputs, name, outputs, schemas, version`}},
		{"duplicate top-level key", "version: 1\nname: x\nname: y\n", []string{
			`c.yaml:3:1: duplicate key "name" (first at line 2)`}},
		{"version 2", "version: 2\nname: x\n", []string{
			"c.yaml:1:10: unsupported config version 2; this carpipe reads version 1"}},
		{"version not a number", "version: one\nname: x\n", []string{"c.yaml:1:10: version must be an integer"}},
		{"version quoted", "version: \"1\"\nname: x\n", []string{"c.yaml:1:10: version must be an integer"}},
		{"version empty", "version:\nname: x\n", []string{"c.yaml:1:9: version must be an integer"}},
		{"version from a variable", "version: ${V}\nname: x\n", nil},
		{"name empty", "version: 1\nname: ''\n", []string{"c.yaml:2:7: name must not be empty"}},
		{"name from an empty variable", "version: 1\nname: ${EMPTY}\n", []string{"c.yaml:2:7: name must not be empty"}},
		{"name unset variable", "version: 1\nname: ${NAME}\n", []string{"c.yaml:2:7: variable NAME is not set"}},
		{"schemas required variable", "version: 1\nname: x\nschemas: ${SCHEMAS:?set it to the schema folder}\n", []string{
			"c.yaml:3:10: variable SCHEMAS is not set: set it to the schema folder"}},
		{"schemas a mapping", "version: 1\nname: x\nschemas: {a: b}\n", []string{
			"c.yaml:3:10: schemas must be a string, not a mapping"}},
		{"inputs a mapping", "version: 1\nname: x\ninputs: {name: a}\n", []string{
			"c.yaml:3:9: inputs must be a list, not a mapping"}},
		{"entry not a mapping", "version: 1\nname: x\noutputs:\n  - warehouse\n", []string{
			"c.yaml:4:5: output #1 must be a mapping, not a string"}},
		{"entry without name and type", "version: 1\nname: x\ninputs:\n  - path: a\n", []string{
			"c.yaml:4:5: input #1 has no name",
			"c.yaml:4:5: input #1 has no type"}},
		{"entry without type", "version: 1\nname: x\ninputs:\n  - name: a\n    type:\n", []string{
			`c.yaml:4:5: input "a" has no type`}},
		{"entry name and type not strings", "version: 1\nname: x\ninputs:\n  - name: [a]\n    type: {b: c}\n", []string{
			"c.yaml:4:11: name of input #1 must be a string, not a list",
			"c.yaml:5:11: type of input #1 must be a string, not a mapping"}},
		{"invalid entry name", "version: 1\nname: x\noutputs:\n  - {name: 'a/b', type: t}\n", []string{
			"c.yaml:4:12: invalid output name: use only letters, digits, '_', '.' and '-'"}},
		{"duplicate names", "version: 1\nname: x\ninputs:\n  - {name: a, type: t}\n  - {name: b, type: t}\n  - {name: a, type: t}\n", []string{
			`c.yaml:6:12: duplicate input name "a" (first at line 4)`}},
		{"an input and an output may share a name", "version: 1\nname: x\ninputs:\n  - {name: a, type: t}\noutputs:\n  - {name: a, type: t}\n", nil},
		{"duplicate key in an entry", "version: 1\nname: x\ninputs:\n  - name: a\n    type: t\n    opts: {x: 1, x: 2}\n", []string{
			`c.yaml:6:18: duplicate key "x" (first at line 6)`}},
		{"unset variable in an entry name is not deferred", "version: 1\nname: x\ninputs:\n  - name: ${IN}\n    type: ${T:?pick a type}\n", []string{
			"c.yaml:4:11: variable IN is not set",
			"c.yaml:5:11: variable T is not set: pick a type"}},
		{"malformed variable in an entry is not deferred", "version: 1\nname: x\ninputs:\n  - name: a\n    type: t\n    path: ${A\n", []string{
			`c.yaml:6:11: malformed variable reference: "${" without a closing "}"`}},
		{"alias", "version: 1\nname: &n x\ninputs:\n  - name: *n\n    type: t\n", []string{
			"c.yaml:4:11: YAML aliases (*n) are not supported",
			"c.yaml:4:11: name of input #1 must be a string, not an alias"}},
		{"complex key", "version: 1\nname: x\n? [a]\n: b\n", []string{
			"c.yaml:3:3: mapping keys must be plain strings, not a list"}},
		{"several problems at once", "name: x\nversion: 3\nextra: 1\ninputs:\n  - {name: a, type: t}\n  - {name: a}\n", []string{
			"c.yaml:2:10: unsupported config version 3; this carpipe reads version 1",
			`c.yaml:3:1: unknown key "extra"; known keys: inputs, name, outputs, schemas, version`,
			"c.yaml:6:5: input #2 has no type",
			`c.yaml:6:12: duplicate input name "a" (first at line 5)`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("c.yaml", []byte(tc.yaml), env)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if want := strings.Join(tc.want, "\n"); got != want {
				t.Errorf("got:\n%s\nwant:\n%s", got, want)
			}
			var ps Problems
			if err != nil && !errors.As(err, &ps) {
				t.Errorf("error is %T, want Problems", err)
			}
		})
	}
}

func TestExpansionKeepsTypes(t *testing.T) {
	env := mapEnv(map[string]string{"PORT": "6543", "NULLISH": "null", "EMPTY": "", "YES": "true", "NUM": "0042"})
	c, err := Parse("c.yaml", []byte(`version: ${VERSION:-1}
name: x
outputs:
  - name: db
    type: t
    port: ${PORT}
    default_port: ${UNSET_PORT:-5432}
    quoted: "${PORT}"
    word: ${NULLISH}
    empty: ${EMPTY}
    flag: ${YES}
    code: ${NUM}
    tagged: !!str ${PORT}
    list:
      - ${PORT}
      - "${PORT}"
`), env)
	if err != nil {
		t.Fatal(err)
	}
	if c.Version != 1 {
		t.Errorf("Version = %d", c.Version)
	}
	type conf struct {
		Port        int      `yaml:"port"`
		DefaultPort int      `yaml:"default_port"`
		Quoted      string   `yaml:"quoted"`
		Word        string   `yaml:"word"`
		Empty       string   `yaml:"empty"`
		Flag        bool     `yaml:"flag"`
		Code        string   `yaml:"code"`
		Tagged      string   `yaml:"tagged"`
		List        []string `yaml:"list"`
	}
	// An empty value is null, which, as in yaml.v3, keeps a default.
	v := conf{Empty: "default"}
	if err := c.Decode(c.Outputs[0], &v); err != nil {
		t.Fatal(err)
	}
	want := conf{6543, 5432, "6543", "null", "default", true, "0042", "6543", []string{"6543", "6543"}}
	if !reflect.DeepEqual(v, want) {
		t.Errorf("decoded %+v\nwant    %+v", v, want)
	}

	// A quoted scalar stays a string, even if it looks like a number.
	var q struct {
		Quoted int `yaml:"quoted"`
	}
	err = c.Decode(c.Outputs[0], &q, &struct {
		Port        int      `yaml:"port"`
		DefaultPort int      `yaml:"default_port"`
		Word        string   `yaml:"word"`
		Empty       string   `yaml:"empty"`
		Flag        bool     `yaml:"flag"`
		Code        string   `yaml:"code"`
		Tagged      string   `yaml:"tagged"`
		List        []string `yaml:"list"`
	}{})
	if want := `c.yaml:8:13: "quoted" in output "db" (type t) must be an integer`; err == nil || err.Error() != want {
		t.Errorf("quoted into int: %v, want %s", err, want)
	}
}

func TestUnsetInEntriesIsDeferred(t *testing.T) {
	conf := []byte(`version: 1
name: x
inputs:
  - name: inbox
    type: dir
    path: ${INBOX}
outputs:
  - name: db
    type: postgres
    password: ${DB_PASS:?the database password}
    host: ${DB_HOST:-localhost}
`)
	type db struct {
		Password string `yaml:"password"`
		Host     string `yaml:"host"`
	}
	c, err := Parse("c.yaml", conf, noEnv)
	if err != nil {
		t.Fatalf("Load failed on unset variables in entries: %v", err)
	}
	in, out := c.Inputs[0], c.Outputs[0]
	if len(in.Unset) != 1 || in.Unset[0].Error() != "c.yaml:6:11: variable INBOX is not set" {
		t.Errorf("input Unset = %v", in.Unset)
	}
	if len(out.Unset) != 1 || out.Unset[0].Error() != "c.yaml:10:15: variable DB_PASS is not set: the database password" {
		t.Errorf("output Unset = %v", out.Unset)
	}

	// A command that needs the entry finds out on Decode, with the rest.
	var d struct {
		db   `yaml:",inline"`
		Port int `yaml:"port" required:"true"`
	}
	err = c.Decode(out, &d)
	want := "c.yaml:8:5: missing required key \"port\" in output \"db\" (type postgres)\n" +
		"c.yaml:10:15: variable DB_PASS is not set: the database password"
	if err == nil || err.Error() != want {
		t.Errorf("Decode:\n got %v\nwant %s", err, want)
	}

	c, err = Parse("c.yaml", conf, mapEnv(map[string]string{"INBOX": "in", "DB_PASS": "pw"}))
	if err != nil {
		t.Fatal(err)
	}
	var set db
	if err := c.Decode(c.Outputs[0], &set); err != nil || set != (db{"pw", "localhost"}) {
		t.Errorf("with variables set: %+v, %v", set, err)
	}
}

// TestShippedConfigs keeps the configs that ship next to this package valid.
func TestShippedConfigs(t *testing.T) {
	c, err := Load("demo.yaml", noEnv)
	if err != nil {
		t.Fatalf("demo.yaml: %v", err)
	}
	if len(c.Inputs) != 1 || len(c.Outputs) != 1 || len(c.Inputs[0].Unset)+len(c.Outputs[0].Unset) != 0 {
		t.Errorf("demo.yaml: inputs %+v, outputs %+v", c.Inputs, c.Outputs)
	}

	// Without its environment the production config still loads; the
	// unset variables wait for a command that needs the output.
	c, err = Load("pipeline.yaml", noEnv)
	if err != nil {
		t.Fatalf("pipeline.yaml: %v", err)
	}
	if len(c.Inputs[0].Unset) != 0 || len(c.Outputs[0].Unset) != 4 {
		t.Errorf("pipeline.yaml: unset %v / %v; want none for the input, 4 for the output", c.Inputs[0].Unset, c.Outputs[0].Unset)
	}
}
