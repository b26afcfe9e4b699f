package config

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

type tlsConf struct {
	CA     string `yaml:"ca" carpipe:"path" required:"true"`
	Verify bool   `yaml:"verify"`
}

type column struct {
	Name  string `yaml:"name" required:"true"`
	Width int    `yaml:"width"`
}

// dirConf is what a dir input might decode; common holds the keys every
// input has, decoded by the engine into a second target.
type dirConf struct {
	Path    string        `yaml:"path" carpipe:"path" required:"true"`
	TLS     *tlsConf      `yaml:"tls"`
	Columns []column      `yaml:"columns"`
	Timeout time.Duration `yaml:"timeout"`
	Tags    []string      `yaml:"tags"`
}

type common struct {
	OnSuccess string `yaml:"on_success"`
	OnFailure string `yaml:"on_failure"`
}

func loadDecode(t *testing.T) *Config {
	t.Helper()
	c, err := Load("testdata/decode.yaml", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestDecodeTwoTargets(t *testing.T) {
	c := loadDecode(t)
	d, cm := dirConf{}, common{OnFailure: "keep"}
	if err := c.Decode(c.Inputs[0], &d, &cm); err != nil {
		t.Fatal(err)
	}
	want := dirConf{
		Path:    filepath.Join(c.Dir, "inbox"),
		TLS:     &tlsConf{CA: filepath.Join(c.Dir, "certs/ca.pem"), Verify: true},
		Columns: []column{{"a", 3}, {"b", 4}},
		Timeout: 30 * time.Second,
		Tags:    []string{"x", "y"},
	}
	if !reflect.DeepEqual(d, want) {
		t.Errorf("dir = %+v\nwant  %+v", d, want)
	}
	if cm != (common{OnSuccess: "move:processed", OnFailure: "keep"}) {
		t.Errorf("common = %+v; want on_success decoded and the default on_failure kept", cm)
	}
}

func TestDecodeProblems(t *testing.T) {
	const what = ` in input "in" (type dir)`
	for _, tc := range []struct {
		name, entry string
		want        []string
	}{
		{"unknown key", "path: a\nbogus: 1\n", []string{
			`c.yaml:7:5: unknown key "bogus"` + what + `; known keys: columns, name, on_failure, on_success, path, tags, timeout, tls, type`}},
		{"required key missing", "on_success: x\n", []string{
			`c.yaml:4:5: missing required key "path"` + what}},
		{"wrong type with position", "path: a\ntimeout: soon\ntags: {a: b}\n", []string{
			`c.yaml:7:14: "timeout"` + what + ` must be a duration such as 30s`,
			`c.yaml:8:11: "tags"` + what + ` must be a list`}},
		{"nested struct is strict", "path: a\ntls:\n  ca: x\n  cert: y\n", []string{
			`c.yaml:9:7: unknown key "tls.cert"` + what + `; known keys: ca, verify`}},
		{"nested required", "path: a\ntls: {verify: true}\n", []string{
			`c.yaml:7:10: missing required key "tls.ca"` + what}},
		{"nested wrong types", "path: a\ntls: x\ncolumns:\n  - {name: a, width: wide}\n  - width: 2\n  - {name: c, colour: red}\n", []string{
			`c.yaml:7:10: "tls"` + what + ` must be a mapping, not a string`,
			`c.yaml:9:26: "columns[0].width"` + what + ` must be an integer`,
			`c.yaml:10:9: missing required key "columns[1].name"` + what,
			`c.yaml:11:19: unknown key "columns[2].colour"` + what + `; known keys: name, width`}},
		{"several at once, in file order", "timeout: 1\nx: 1\non_success: [a]\n", []string{
			`c.yaml:4:5: missing required key "path"` + what,
			`c.yaml:6:14: "timeout"` + what + ` must be a duration such as 30s`,
			`c.yaml:7:5: unknown key "x"` + what + `; known keys: columns, name, on_failure, on_success, path, tags, timeout, tls, type`,
			`c.yaml:8:17: "on_success"` + what + ` must be a string`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conf := "version: 1\nname: x\ninputs:\n  - name: in\n    type: dir\n" + indent(tc.entry, "    ")
			c, err := Parse("c.yaml", []byte(conf), noEnv)
			if err != nil {
				t.Fatal(err)
			}
			err = c.Decode(c.Inputs[0], &dirConf{}, &common{})
			got := ""
			if err != nil {
				got = err.Error()
			}
			if want := strings.Join(tc.want, "\n"); got != want {
				t.Errorf("got:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func indent(s, prefix string) string {
	lines := strings.SplitAfter(s, "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = prefix + l
		}
	}
	return strings.Join(lines, "")
}

func TestDecodePaths(t *testing.T) {
	c, err := Parse("/etc/carpipe/c.yaml", []byte(`version: 1
name: x
inputs:
  - name: a
    type: t
    rel: data/./x/../in
    up: ../shared
    abs: /srv/in
    stdin: "-"
    url: s3://bucket/prefix
    plain: data/in
    list: [a, b]
`), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	type nested struct {
		Dir string `yaml:"dir" carpipe:"path"`
	}
	var v struct {
		Rel, Up, Abs, Stdin, URL string   `carpipe:"path"`
		Plain                    string   // not tagged: left alone
		Default                  string   `yaml:"default" carpipe:"path"`
		Unset                    string   `yaml:"unset" carpipe:"path"`
		Nested                   nested   `yaml:"nested"`
		List                     []string `yaml:"list" carpipe:"path"` // only strings are paths
	}
	v.Default = "defaults/here"
	v.Nested.Dir = "n"
	if err := c.Decode(c.Inputs[0], &v); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ got, want string }{
		{v.Rel, "/etc/carpipe/data/in"},
		{v.Up, "/etc/shared"},
		{v.Abs, "/srv/in"},
		{v.Stdin, "-"},
		{v.URL, "s3://bucket/prefix"},
		{v.Plain, "data/in"},
		{v.Default, "/etc/carpipe/defaults/here"}, // a plugin's default path is config-relative too
		{v.Unset, ""},
		{v.Nested.Dir, "/etc/carpipe/n"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
	if !reflect.DeepEqual(v.List, []string{"a", "b"}) {
		t.Errorf("list = %q", v.List)
	}
}

func TestDecodeInlineAndDefaults(t *testing.T) {
	c, err := Parse("c.yaml", []byte("version: 1\nname: x\noutputs:\n  - name: o\n    type: t\n    host: h\n    port:\n    batch: 5\n"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	type conn struct {
		Host string `yaml:"host"`
		Port int    `yaml:"port"`
	}
	v := struct {
		conn  `yaml:",inline"`
		Batch int
		Skip  string `yaml:"-"`
	}{conn: conn{Port: 5432}}
	if err := c.Decode(c.Outputs[0], &v); err != nil {
		t.Fatal(err)
	}
	if v.Host != "h" || v.Port != 5432 || v.Batch != 5 {
		t.Errorf("got %+v; want host h, the default port kept for an empty value, batch 5", v)
	}
}

func TestDecodeMisuse(t *testing.T) {
	c := loadDecode(t)
	in := c.Inputs[0]
	for name, targets := range map[string][]any{
		"shared key":  {&dirConf{}, &struct{ Path string }{}},
		"not pointer": {dirConf{}},
		"nil pointer": {(*dirConf)(nil)},
		"not struct":  {new(int)},
	} {
		err := c.Decode(in, targets...)
		if _, isProblems := err.(Problems); err == nil || isProblems {
			t.Errorf("%s: err = %v, want a plain error", name, err)
		}
	}
	if err := c.Decode(Plugin{Name: "x"}, &dirConf{}); err == nil {
		t.Error("Decode of a plugin without a node succeeded")
	}
}

// TestPathsFromEnvironment: a relative path from a variable is relative to
// the working directory; one written in the file, the default of a
// ${VAR:-default} included, stays relative to the config's folder.
func TestPathsFromEnvironment(t *testing.T) {
	wd := t.TempDir()
	t.Chdir(wd)
	c, err := Parse("/etc/carpipe/c.yaml", []byte(`version: 1
name: x
schemas: ${SCHEMAS}
inputs:
  - name: i
    type: t
    env: ${FILE_DIRECTORY}
    fallback: ${UNSET_DIR:-./inbox}
    prefixed: ${FILE_DIRECTORY}/more
    inside: data/${FILE_DIRECTORY}
    absolute: ${ABS_DIR}
`), mapEnv(map[string]string{"FILE_DIRECTORY": "./inbox", "SCHEMAS": "s", "ABS_DIR": "/srv/in"}))
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Env      string `yaml:"env" carpipe:"path"`
		Fallback string `yaml:"fallback" carpipe:"path"`
		Prefixed string `yaml:"prefixed" carpipe:"path"`
		Inside   string `yaml:"inside" carpipe:"path"`
		Absolute string `yaml:"absolute" carpipe:"path"`
	}
	if err := c.Decode(c.Inputs[0], &v); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ what, got, want string }{
		{"schemas", c.Schemas, filepath.Join(wd, "s")},
		{"env", v.Env, filepath.Join(wd, "inbox")},
		{"fallback", v.Fallback, "/etc/carpipe/inbox"},
		{"prefixed", v.Prefixed, filepath.Join(wd, "inbox/more")},
		{"inside", v.Inside, "/etc/carpipe/data/inbox"},
		{"absolute", v.Absolute, "/srv/in"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.what, tc.got, tc.want)
		}
	}
}
