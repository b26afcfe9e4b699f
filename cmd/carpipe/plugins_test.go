package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/xeipuuv/gojsonschema"
	"gopkg.in/yaml.v3"

	"github.com/carpipe/carpipe/config"
	"github.com/carpipe/carpipe/engine"
	"github.com/carpipe/carpipe/plugins"
)

func TestPluginsCommand(t *testing.T) {
	code, out, errs := carpipe(t, "plugins")
	wantCode(t, code, exitOK, out, errs)
	for _, f := range config.Fields(engine.CommonInputKeys()) {
		wantContains(t, out, "\n  "+f.Key+" ")
	}
	check := func(name, sample string, fields []config.Field) {
		wantContains(t, out, "\n"+name+": ")
		for _, f := range fields {
			wantContains(t, out, "\n  "+f.Key+" ")
		}
		for _, line := range strings.Split(strings.TrimSpace(sample), "\n") {
			wantContains(t, out, "\n    "+line+"\n")
		}
	}
	for _, n := range plugins.Default.InputNames() {
		s, _ := plugins.Default.Input(n)
		check(n, s.Sample, config.Fields(s.New()))
	}
	for _, n := range plugins.Default.OutputNames() {
		s, _ := plugins.Default.Output(n)
		check(n, s.Sample, config.Fields(s.New()))
	}
	// Defaults come from New, required and secret from the tags.
	line := regexp.MustCompile(`(?m)^  connect_timeout +duration +10s +how long`)
	if !line.MatchString(out) {
		t.Errorf("postgres connect_timeout row wrong:\n%s", out)
	}
	if !regexp.MustCompile(`(?m)^  path +string +- +yes +the folder to read \(path\)$`).MatchString(out) {
		t.Errorf("dir path row wrong:\n%s", out)
	}
	wantContains(t, out, "password; never logged (secret: masked in logs)")
}

// configSchemaLoader compiles `carpipe config schema`.
func configSchemaLoader(t *testing.T) *gojsonschema.Schema {
	t.Helper()
	code, out, errs := carpipe(t, "config", "schema")
	wantCode(t, code, exitOK, out, errs)
	s, err := gojsonschema.NewSchema(gojsonschema.NewStringLoader(out))
	if err != nil {
		t.Fatalf("the config schema does not compile: %v", err)
	}
	return s
}

func yamlDoc(t *testing.T, name string, data []byte) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return v
}

func validate(t *testing.T, s *gojsonschema.Schema, doc any) []string {
	t.Helper()
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Validate(gojsonschema.NewBytesLoader(b))
	if err != nil {
		t.Fatal(err)
	}
	var errs []string
	for _, e := range res.Errors() {
		errs = append(errs, e.String())
	}
	return errs
}

// TestConfigSchemaExamples validates every example config of the repo.
func TestConfigSchemaExamples(t *testing.T) {
	s := configSchemaLoader(t)
	examples := map[string]any{}
	files, _ := filepath.Glob("../../config/*.yaml")
	files = append(files, "../../config/testdata/valid.yaml")
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		examples[f] = yamlDoc(t, f, data)
	}
	sqlite := []any{map[string]any{"name": "db", "type": "sqlite", "path": "x.db"}}
	dir := []any{map[string]any{"name": "in", "type": "dir", "path": "in"}}
	for _, n := range plugins.Default.InputNames() {
		spec, _ := plugins.Default.Input(n)
		examples["sample of input "+n] = map[string]any{"version": 1, "name": "s", "inputs": yamlDoc(t, n, []byte(spec.Sample)), "outputs": sqlite}
	}
	for _, n := range plugins.Default.OutputNames() {
		spec, _ := plugins.Default.Output(n)
		examples["sample of output "+n] = map[string]any{"version": 1, "name": "s", "inputs": dir, "outputs": yamlDoc(t, n, []byte(spec.Sample))}
	}
	n := 0
	for _, doc := range []string{"README.md", "docs/config.md"} {
		text, err := os.ReadFile("../../" + doc)
		if err != nil {
			t.Fatal(err)
		}
		blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(text), -1)
		for i, b := range blocks {
			if strings.HasPrefix(b[1], "version: 1\n") {
				examples[fmt.Sprint(doc, " yaml block ", i)] = yamlDoc(t, doc, []byte(b[1]))
				n++
			}
		}
	}
	if n == 0 {
		t.Fatal("no config example found in the README or docs/config.md")
	}
	for name, doc := range examples {
		if errs := validate(t, s, doc); len(errs) > 0 {
			t.Errorf("%s does not validate:\n%s", name, strings.Join(errs, "\n"))
		}
	}
}

// TestConfigSchemaRefuses: the schema catches what carpipe refuses.
func TestConfigSchemaRefuses(t *testing.T) {
	s := configSchemaLoader(t)
	base := func() map[string]any {
		return map[string]any{"version": 1, "name": "x",
			"inputs":  []any{map[string]any{"name": "in", "type": "dir", "path": "in", "on_success": "move:done", "min_age": "30s"}},
			"outputs": []any{map[string]any{"name": "db", "type": "postgres", "host": "h", "database": "d", "port": "${PORT:-5432}", "connect_timeout": "5s"}},
		}
	}
	if errs := validate(t, s, base()); len(errs) > 0 {
		t.Fatalf("a valid config is refused: %v", errs)
	}
	in := func(m map[string]any) map[string]any { return m["inputs"].([]any)[0].(map[string]any) }
	out := func(m map[string]any) map[string]any { return m["outputs"].([]any)[0].(map[string]any) }
	for name, change := range map[string]func(map[string]any){
		"unknown top key":      func(m map[string]any) { m["inputz"] = 1 },
		"version 2":            func(m map[string]any) { m["version"] = 2 },
		"no name":              func(m map[string]any) { delete(m, "name") },
		"unknown input key":    func(m map[string]any) { in(m)["recurse"] = true },
		"missing path":         func(m map[string]any) { delete(in(m), "path") },
		"unknown type":         func(m map[string]any) { in(m)["type"] = "gopher" },
		"bad entry name":       func(m map[string]any) { in(m)["name"] = "in box" },
		"boolean as text":      func(m map[string]any) { in(m)["recursive"] = "maybe" },
		"duration as number":   func(m map[string]any) { in(m)["min_age"] = 30 },
		"duration misspelt":    func(m map[string]any) { in(m)["min_age"] = "30 seconds" },
		"port as word":         func(m map[string]any) { out(m)["port"] = "fivefour" },
		"output key on input":  func(m map[string]any) { in(m)["sslmode"] = "disable" },
		"input key on output":  func(m map[string]any) { out(m)["on_success"] = "keep" },
		"output without type":  func(m map[string]any) { delete(out(m), "type") },
		"sqlite without path":  func(m map[string]any) { m["outputs"] = []any{map[string]any{"name": "db", "type": "sqlite"}} },
		"postgres key unknown": func(m map[string]any) { out(m)["hostname"] = "h" },
	} {
		doc := base()
		change(doc)
		if errs := validate(t, s, doc); len(errs) == 0 {
			t.Errorf("%s: accepted", name)
		}
	}
}
