package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/carpipe/carpipe/config"
	"github.com/carpipe/carpipe/engine"
	"github.com/carpipe/carpipe/plugins"
)

// registry describes the registered plugins from their config structs.
func registry(r *plugins.Registry) (inputs, outputs []config.PluginDoc, samples map[string]string) {
	samples = map[string]string{}
	for _, n := range r.InputNames() {
		s, _ := r.Input(n)
		inputs = append(inputs, config.PluginDoc{Type: n, Doc: s.Doc, Fields: config.Fields(s.New())})
		samples["input "+n] = s.Sample
	}
	for _, n := range r.OutputNames() {
		s, _ := r.Output(n)
		outputs = append(outputs, config.PluginDoc{Type: n, Doc: s.Doc, Fields: config.Fields(s.New())})
		samples["output "+n] = s.Sample
	}
	return inputs, outputs, samples
}

func (c *cli) pluginsCmd() *cobra.Command {
	var out *format
	cmd := c.command("plugins", "List the plugins with their config keys and samples",
		`List every input and output plugin this carpipe has, with the config keys
each takes (type, default, whether required, what it does) and a sample
entry to copy into a config.`,
		`  carpipe plugins
  carpipe plugins --format json | jq '.inputs[].type'`,
		nil, func(cmd *cobra.Command, args []string) error {
			inputs, outputs, samples := registry(plugins.Default)
			common := config.Fields(engine.CommonInputKeys())
			if out.value == "json" {
				return c.writeJSON(pluginsJSON(inputs, outputs, samples, common))
			}
			w := c.stdout
			fmt.Fprintln(w, pathNote)
			fmt.Fprintln(w, "\nINPUTS")
			fmt.Fprintln(w, "\nEvery input also takes:")
			writeFields(w, common)
			for _, d := range inputs {
				writePlugin(w, d, samples["input "+d.Type])
			}
			fmt.Fprintln(w, "\nOUTPUTS")
			for _, d := range outputs {
				writePlugin(w, d, samples["output "+d.Type])
			}
			return nil
		})
	out = formatFlag(cmd, "text")
	return cmd
}

const pathNote = `A relative (path) written in the config file is relative to the file's folder;
one that comes from an environment variable, as in path: ${FILE_DIRECTORY},
is relative to the working directory.`

type pluginJSON struct {
	Type   string      `json:"type"`
	Doc    string      `json:"doc"`
	Fields []fieldJSON `json:"fields"`
	Sample string      `json:"sample"`
}

type fieldJSON struct {
	Key      string      `json:"key"`
	Type     string      `json:"type"`
	Default  *string     `json:"default"`
	Required bool        `json:"required"`
	Secret   bool        `json:"secret"`
	Path     bool        `json:"path"`
	Doc      string      `json:"doc"`
	Fields   []fieldJSON `json:"fields,omitempty"`
	Item     *fieldJSON  `json:"item,omitempty"`
}

func fieldsJSON(fs []config.Field) []fieldJSON {
	out := make([]fieldJSON, len(fs))
	for i, f := range fs {
		out[i] = fieldJSON{Key: f.Key, Type: f.Type, Required: f.Required, Secret: f.Secret, Path: f.Path, Doc: f.Doc,
			Fields: fieldsJSON(f.Fields)}
		if f.Default != nil {
			def := fmt.Sprint(f.Default)
			out[i].Default = &def
		}
		if f.Item != nil {
			out[i].Item = &fieldsJSON([]config.Field{*f.Item})[0]
		}
	}
	return out
}

func pluginsJSON(inputs, outputs []config.PluginDoc, samples map[string]string, common []config.Field) any {
	list := func(kind string, ds []config.PluginDoc) []pluginJSON {
		out := make([]pluginJSON, len(ds))
		for i, d := range ds {
			out[i] = pluginJSON{Type: d.Type, Doc: d.Doc, Fields: fieldsJSON(d.Fields), Sample: samples[kind+" "+d.Type]}
		}
		return out
	}
	return struct {
		CommonInputKeys []fieldJSON  `json:"common_input_keys"`
		Inputs          []pluginJSON `json:"inputs"`
		Outputs         []pluginJSON `json:"outputs"`
	}{fieldsJSON(common), list("input", inputs), list("output", outputs)}
}

func writePlugin(w io.Writer, d config.PluginDoc, sample string) {
	fmt.Fprintf(w, "\n%s: %s\n", d.Type, d.Doc)
	writeFields(w, d.Fields)
	if sample = strings.TrimSpace(sample); sample != "" {
		fmt.Fprintln(w, "  sample:")
		for _, line := range strings.Split(sample, "\n") {
			fmt.Fprintln(w, "    "+line)
		}
	}
}

func writeFields(w io.Writer, fs []config.Field) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  KEY\tTYPE\tDEFAULT\tREQUIRED\tDESCRIPTION")
	for _, f := range fs {
		def := ""
		if f.Default != nil {
			def = fmt.Sprint(f.Default)
		}
		req := ""
		if f.Required {
			req = "yes"
		}
		doc := f.Doc
		if f.Secret {
			doc += " (secret: masked in logs)"
		}
		if f.Path {
			doc += " (path)"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", f.Key, f.Type, dash(def), req, doc)
	}
	tw.Flush()
}

func (c *cli) configCmd() *cobra.Command {
	cmd := c.command("config", "Tools for the config file",
		`Tools for carpipe's config file. To check a config, see carpipe check.`,
		`  carpipe config schema > carpipe.schema.json`,
		nil, func(cmd *cobra.Command, args []string) error {
			return c.needsCommand(cmd)
		})
	cmd.Args = func(cmd *cobra.Command, args []string) error {
		if len(args) > 0 {
			hint := ""
			if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
				hint = "; did you mean " + strings.Join(s, " or ") + "?"
			}
			return usageError("unknown command %q for %q%s\nRun '%s --help' for usage.", args[0], cmd.CommandPath(), hint, cmd.CommandPath())
		}
		return nil
	}
	schema := c.command("schema", "Print the JSON Schema of the config file",
		`Print the JSON Schema of the config file for the plugins of this carpipe,
for an editor to complete and check configs as they are written (e.g. with
the YAML language server: # yaml-language-server: $schema=carpipe.schema.json).`,
		`  carpipe config schema > carpipe.schema.json`,
		nil, func(cmd *cobra.Command, args []string) error {
			return c.writeJSON(configSchema(plugins.Default))
		})
	cmd.AddCommand(schema)
	return cmd
}

// configSchema is the JSON Schema of carpipe.yaml for the plugins of r.
func configSchema(r *plugins.Registry) map[string]any {
	inputs, outputs, _ := registry(r)
	return config.JSONSchema(inputs, outputs, config.Fields(engine.CommonInputKeys()))
}
