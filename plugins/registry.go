package plugins

import (
	"fmt"
	"sort"
)

// InputSpec registers an input plugin. New returns a fresh plugin with its
// defaults set; the engine decodes the config into it, so the struct's yaml
// fields are its config spec and, with their doc tags, its documentation.
type InputSpec struct {
	Name   string
	Doc    string
	Sample string // an example YAML entry, embedded from sample.yaml
	New    func() Input
}

// OutputSpec registers an output plugin. New returns a Ledger (a database
// output) or an Output (a sink).
type OutputSpec struct {
	Name   string
	Doc    string
	Sample string
	New    func() any
}

// Registry maps plugin type names to plugins. The engine receives one, so
// tests can build their own.
type Registry struct {
	inputs  map[string]InputSpec
	outputs map[string]OutputSpec
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{inputs: map[string]InputSpec{}, outputs: map[string]OutputSpec{}}
}

// Default is filled by the plugins' init functions; import plugins/all.
var Default = NewRegistry()

// AddInput registers an input. It panics on an empty or duplicate name, as
// database/sql does, since that is a programming error.
func (r *Registry) AddInput(s InputSpec) {
	check(s.Name, s.New != nil, r.inputs[s.Name].Name != "", "input")
	r.inputs[s.Name] = s
}

// AddOutput registers an output.
func (r *Registry) AddOutput(s OutputSpec) {
	check(s.Name, s.New != nil, r.outputs[s.Name].Name != "", "output")
	r.outputs[s.Name] = s
}

func check(name string, hasNew, dup bool, kind string) {
	switch {
	case name == "":
		panic("plugins: " + kind + " registered with an empty name")
	case !hasNew:
		panic("plugins: " + kind + " " + name + " registered without New")
	case dup:
		panic("plugins: " + kind + " " + name + " registered twice")
	}
}

// Input returns the input spec for a type name.
func (r *Registry) Input(name string) (InputSpec, error) {
	s, ok := r.inputs[name]
	if !ok {
		return s, fmt.Errorf("unknown input type %q (registered: %v)", name, r.InputNames())
	}
	return s, nil
}

// Output returns the output spec for a type name.
func (r *Registry) Output(name string) (OutputSpec, error) {
	s, ok := r.outputs[name]
	if !ok {
		return s, fmt.Errorf("unknown output type %q (registered: %v)", name, r.OutputNames())
	}
	return s, nil
}

// InputNames lists registered inputs, sorted.
func (r *Registry) InputNames() []string { return keys(r.inputs) }

// OutputNames lists registered outputs, sorted.
func (r *Registry) OutputNames() []string { return keys(r.outputs) }

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
