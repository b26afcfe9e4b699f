package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

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

func pluginsCmd(c *cli, args []string) int {
	f := c.flags("plugins", false)
	if code, ok := c.parse(f, args); !ok {
		return code
	}
	if !c.noArgs(f) {
		return exitUsage
	}
	inputs, outputs, samples := registry(plugins.Default)
	w := c.stdout
	fmt.Fprintln(w, "INPUTS")
	fmt.Fprintln(w, "\nEvery input also takes:")
	writeFields(w, config.Fields(engine.CommonInputKeys()))
	for _, d := range inputs {
		writePlugin(w, d, samples["input "+d.Type])
	}
	fmt.Fprintln(w, "\nOUTPUTS")
	for _, d := range outputs {
		writePlugin(w, d, samples["output "+d.Type])
	}
	return exitOK
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
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", f.Key, f.Type, dash(def), req, doc)
	}
	tw.Flush()
}

func configCmd(c *cli, args []string) int {
	if len(args) == 0 || args[0] != "schema" {
		fmt.Fprintln(c.stderr, "carpipe: usage: carpipe config schema")
		return exitUsage
	}
	f := c.flags("config schema", false)
	if code, ok := c.parse(f, args[1:]); !ok {
		return code
	}
	if !c.noArgs(f) {
		return exitUsage
	}
	enc := json.NewEncoder(c.stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return c.flush(enc.Encode(configSchema(plugins.Default)))
}

// configSchema is the JSON Schema of carpipe.yaml for the plugins of r.
func configSchema(r *plugins.Registry) map[string]any {
	inputs, outputs, _ := registry(r)
	return config.JSONSchema(inputs, outputs, config.Fields(engine.CommonInputKeys()))
}
