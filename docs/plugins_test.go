package docs

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/carpipe/carpipe/config"
	"github.com/carpipe/carpipe/engine"
	"github.com/carpipe/carpipe/plugins"
	_ "github.com/carpipe/carpipe/plugins/all"
	"github.com/carpipe/carpipe/plugins/plugintest"
)

const pluginsDoc = "plugins.md"

// TestPluginsDoc fails when plugins.md is not what the registered plugins'
// specs say: their names, docs, config keys (yaml and doc tags, defaults)
// and samples. `go test ./docs -run TestPluginsDoc -update` rewrites it.
func TestPluginsDoc(t *testing.T) {
	want := pluginsMarkdown(plugins.Default)
	if *plugintest.Update {
		if err := os.WriteFile(pluginsDoc, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(pluginsDoc)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("docs/%s is stale: run go test ./docs -run TestPluginsDoc -update\n%s", pluginsDoc, firstDiff(string(got), want))
	}
}

// TestPluginsDocCoversRegistry guards the generator itself: every plugin
// and every key of every plugin is in what it writes.
func TestPluginsDocCoversRegistry(t *testing.T) {
	doc := pluginsMarkdown(plugins.Default)
	check := func(kind, name string, v any) {
		if !strings.Contains(doc, "\n### `"+name+"`\n") {
			t.Errorf("%s %s has no section", kind, name)
		}
		for _, f := range config.Fields(v) {
			if !strings.Contains(doc, "| `"+f.Key+"` |") {
				t.Errorf("%s %s: key %s is missing", kind, name, f.Key)
			}
		}
	}
	for _, n := range plugins.Default.InputNames() {
		s, _ := plugins.Default.Input(n)
		check("input", n, s.New())
	}
	for _, n := range plugins.Default.OutputNames() {
		s, _ := plugins.Default.Output(n)
		check("output", n, s.New())
	}
	for _, f := range config.Fields(engine.CommonInputKeys()) {
		if !strings.Contains(doc, "| `"+f.Key+"` |") {
			t.Errorf("common input key %s is missing", f.Key)
		}
	}
}

// pluginsMarkdown is plugins.md for the plugins of r.
func pluginsMarkdown(r *plugins.Registry) string {
	var b strings.Builder
	b.WriteString(`# Plugins

<!-- Generated from the plugins' specs by go test ./docs -run TestPluginsDoc -update. Do not edit. -->

Every entry of ` + "`inputs`" + ` and ` + "`outputs`" + ` in a config has a ` + "`name`" + ` (unique among
its kind; letters, digits, ` + "`_`, `.` and `-`" + `) and a ` + "`type`" + `, one of the plugins
below. ` + "`carpipe plugins`" + ` prints the same from the binary at hand. Keys are
strict: one that a plugin does not know is an error naming the file, line and
column. See [config.md](config.md) for variables, paths and file types.

Inputs: ` + links(r.InputNames()) + `. Outputs: ` + links(r.OutputNames()) + `.

## Keys every input takes

The engine reads these from every input entry, whatever its type.

`)
	writeKeys(&b, config.Fields(engine.CommonInputKeys()))
	b.WriteString("\n## Inputs\n")
	for _, n := range r.InputNames() {
		s, _ := r.Input(n)
		writePlugin(&b, n, s.Doc, s.Sample, config.Fields(s.New()))
	}
	b.WriteString("\n## Outputs\n\nExactly one output is a database (`postgres` or `sqlite`): it holds the ledger and the records. Others receive the same accepted records after the database has committed each file.\n")
	for _, n := range r.OutputNames() {
		s, _ := r.Output(n)
		writePlugin(&b, n, s.Doc, s.Sample, config.Fields(s.New()))
	}
	return b.String()
}

func links(names []string) string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = "[`" + n + "`](#" + n + ")"
	}
	return strings.Join(out, ", ")
}

func writePlugin(b *strings.Builder, name, doc, sample string, fields []config.Field) {
	fmt.Fprintf(b, "\n### `%s`\n\n%s\n\n", name, cell(doc))
	writeKeys(b, fields)
	if sample = strings.TrimSpace(sample); sample != "" {
		fmt.Fprintf(b, "\nSample:\n\n```yaml\n%s\n```\n", sample)
	}
}

func writeKeys(b *strings.Builder, fields []config.Field) {
	b.WriteString("| key | type | default | required | description |\n|---|---|---|---|---|\n")
	var add func(prefix string, fs []config.Field)
	add = func(prefix string, fs []config.Field) {
		for _, f := range fs {
			def := "-"
			if f.Default != nil {
				def = "`" + fmt.Sprint(f.Default) + "`"
			}
			req := ""
			if f.Required {
				req = "yes"
			}
			doc := f.Doc
			if f.Path {
				doc += " (a relative path is relative to the config file's folder)"
			}
			if f.Secret {
				doc += " (secret: masked in logs and errors)"
			}
			typ := f.Type
			if f.Item != nil {
				typ += " of " + f.Item.Type
			}
			fmt.Fprintf(b, "| `%s` | %s | %s | %s | %s |\n", prefix+f.Key, typ, def, req, cell(doc))
			add(prefix+f.Key+".", f.Fields)
			if f.Item != nil {
				add(prefix+f.Key+"[].", f.Item.Fields)
			}
		}
	}
	add("", fields)
}

// cell makes text safe in a Markdown table cell.
var cell = strings.NewReplacer(`\`, `\\`, "|", `\|`, "<", "&lt;", ">", "&gt;", "*", `\*`, "\n", " ").Replace

// firstDiff shows the first line where got and want part.
func firstDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < len(g) || i < len(w); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return fmt.Sprintf("line %d:\n  got:  %q\n  want: %q", i+1, gl, wl)
		}
	}
	return ""
}
