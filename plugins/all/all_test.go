package all

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/carpipe/carpipe/config"
	"github.com/carpipe/carpipe/plugins"
)

// TestEveryFolderRegistered fails when a plugin folder is not imported here
// or registers under another name than its folder's.
func TestEveryFolderRegistered(t *testing.T) {
	for kind, names := range map[string][]string{
		"inputs":  plugins.Default.InputNames(),
		"outputs": plugins.Default.OutputNames(),
	} {
		dirs, err := os.ReadDir(filepath.Join("..", kind))
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		for _, d := range dirs {
			if d.IsDir() {
				want = append(want, d.Name())
			}
		}
		if !slices.Equal(want, names) {
			t.Errorf("%s: folders %v, registered %v: import every plugin in plugins/all", kind, want, names)
		}
	}
}

// TestSamplesDecode checks that every plugin's embedded sample is a valid
// config entry for it, so the docs cannot rot.
func TestSamplesDecode(t *testing.T) {
	env := func(name string) (string, bool) {
		if strings.HasSuffix(name, "_PORT") {
			return "5432", true
		}
		return "x-" + name, true
	}
	check := func(kind, name, sample string, target func() any) {
		doc := "version: 1\nname: sample\n" + kind + ":\n" + indent(sample)
		cfg, err := config.Parse(name+"/sample.yaml", []byte(doc), env)
		if err != nil {
			t.Errorf("%s %s: %v", kind, name, err)
			return
		}
		list := cfg.Inputs
		if kind == "outputs" {
			list = cfg.Outputs
		}
		if len(list) == 0 || list[0].Type != name {
			t.Errorf("%s %s: sample declares %v", kind, name, list)
			return
		}
		var common struct {
			OnSuccess string `yaml:"on_success"`
			OnFailure string `yaml:"on_failure"`
		}
		targets := []any{target()}
		if kind == "inputs" {
			targets = append(targets, &common)
		}
		if err := cfg.Decode(list[0], targets...); err != nil {
			t.Errorf("%s %s: sample does not decode: %v", kind, name, err)
		}
	}
	for _, n := range plugins.Default.InputNames() {
		s, _ := plugins.Default.Input(n)
		check("inputs", n, s.Sample, func() any { return s.New() })
	}
	for _, n := range plugins.Default.OutputNames() {
		s, _ := plugins.Default.Output(n)
		check("outputs", n, s.Sample, func() any { return s.New() })
	}
}

func indent(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return "  " + strings.Join(lines, "\n  ") + "\n"
}
