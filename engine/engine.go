// Package engine runs a declared pipeline: it lists the inputs, routes each
// file to its type, loads it into the ledger, each file whole or not at all
// (small files in groups sharing a transaction), hands it to the other
// outputs, and moves it only after the commit.
package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/big"
	"path"
	"runtime"
	"strings"
	"time"
	"unicode"

	"github.com/dustin/go-humanize"

	"github.com/carpipe/carpipe/config"
	"github.com/carpipe/carpipe/plugins"
)

// Options tune a run.
type Options struct {
	Workers int // files loaded at once; default: CPUs
	Logger  *slog.Logger
	Stdout  io.Writer // where outputs writing to "-" write
	// Events, when set, is told what happens to every file as it happens:
	// for progress displays and metrics. It must not block.
	Events func(Event)
	// Secret is told every secret value of the config as it is decoded,
	// so that logs and errors can mask it.
	Secret func(string)
	// InputsOnly builds no output: for dry runs, which must not need a
	// database or the variables only outputs use.
	InputsOnly bool
	// ReadOnly is for commands that only read the ledger: of the outputs
	// only the ledger is opened, and no plugin may create or change
	// anything (plugins.Env.ReadOnly).
	ReadOnly bool
	// ClaimTTL is how long a file's lease lasts unless renewed: how long
	// a crashed process's files wait before another takes them (default
	// DefaultClaimTTL).
	ClaimTTL time.Duration
	// DBRetryFor is how long a lost database is waited for, files in
	// flight being retried with backoff; 0 ends the run at once.
	DBRetryFor time.Duration
	// Grace is how long files in flight get to finish once the run's
	// context ends; 0 rolls them back at once.
	Grace time.Duration
}

// Engine is a pipeline built from a config.
type Engine struct {
	name    string
	router  plugins.Router
	log     *slog.Logger
	workers int
	stdout  io.Writer
	secret  func(string)
	events  func(Event)
	ro      bool
	lenient map[config.Pos]bool // entries with unset variables, when linting
	inputs  []*input
	ledger  plugins.Ledger
	outs    []output // the ledger first, then the sinks
	closers []plugins.Closer
	scale   scaleOut // leases, outages, shutdown: claims.go
}

type input struct {
	name          string
	plugin        plugins.Input
	minAge        time.Duration
	maxSize       int64 // 0: no limit
	limits        plugins.Limits
	onSuccess     action
	onFailure     action
	failUnmatched bool
}

type output struct {
	name   string
	plugin any            // a plugins.Ledger, first, or else
	sink   plugins.Output // a sink
}

// common holds the keys the engine reads from every input entry.
type common struct {
	OnSuccess string        `yaml:"on_success" doc:"keep | delete | move:<folder relative to the input's root>"`
	OnFailure string        `yaml:"on_failure" doc:"keep | delete | move:<folder>"`
	MinAge    time.Duration `yaml:"min_age" doc:"leave files modified less than this long ago (still being uploaded), e.g. 30s"`
	MaxSize   string        `yaml:"max_file_size" doc:"fail larger files with a clear reason, e.g. 2GiB; default no limit"`
	MaxRecord string        `yaml:"max_record_size" doc:"fail a file holding a record larger than this, which would be held whole in memory; default 64MiB"`
	Unmatched string        `yaml:"on_unmatched" doc:"keep: leave files no type claims, logged and counted (default) | fail: also make the run partial (exit 3)"`
}

// New builds and initialises the plugins a config declares.
func New(ctx context.Context, cfg *config.Config, reg *plugins.Registry, router plugins.Router, o Options) (*Engine, error) {
	e := build(cfg, reg, router, o)
	errs := e.decodeAll(cfg, reg, !o.InputsOnly)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if o.ReadOnly && e.ledger != nil {
		e.outs = e.outs[:1] // the ledger comes first
	}
	for _, in := range e.inputs {
		errs = append(errs, e.init(ctx, in.plugin, "input", in.name))
	}
	for _, out := range e.outs {
		errs = append(errs, e.init(ctx, out.plugin, "output", out.name))
	}
	if err := errors.Join(errs...); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

// Lint checks every plugin entry of a config without opening anything:
// each decodes strictly and passes its plugin's Validate. Unset variables
// come back apart, since only the command that needs an entry fails on them.
func Lint(cfg *config.Config, reg *plugins.Registry) (err error, unset config.Problems) {
	c := *cfg
	e := build(&c, reg, nil, Options{})
	e.lenient = map[config.Pos]bool{}
	strip := func(ps []config.Plugin) []config.Plugin {
		out := make([]config.Plugin, len(ps))
		for i, p := range ps {
			if len(p.Unset) > 0 {
				// Its values are incomplete: Validate would only echo that.
				e.lenient[p.Pos] = true
			}
			unset = append(unset, p.Unset...)
			p.Unset = nil
			out[i] = p
		}
		return out
	}
	c.Inputs, c.Outputs = strip(cfg.Inputs), strip(cfg.Outputs)
	return errors.Join(e.decodeAll(&c, reg, true)...), unset
}

func build(cfg *config.Config, reg *plugins.Registry, router plugins.Router, o Options) *Engine {
	if o.Workers <= 0 {
		o.Workers = runtime.NumCPU()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Secret == nil {
		o.Secret = func(string) {}
	}
	if o.Events == nil {
		o.Events = func(Event) {}
	}
	return &Engine{events: o.Events, name: cfg.Name, router: router, log: o.Logger, workers: o.Workers, stdout: o.Stdout, secret: o.Secret,
		ro: o.ReadOnly, scale: newScaleOut(o)}
}

// decodeAll builds every plugin from its entry, reporting every problem.
func (e *Engine) decodeAll(cfg *config.Config, reg *plugins.Registry, outputs bool) []error {
	var errs []error
	for _, p := range cfg.Inputs {
		in, err := e.newInput(cfg, reg, p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		e.inputs = append(e.inputs, in)
	}
	if outputs {
		errs = append(errs, e.newOutputs(cfg, reg))
	}
	return errs
}

func (e *Engine) newInput(cfg *config.Config, reg *plugins.Registry, p config.Plugin) (*input, error) {
	spec, err := reg.Input(p.Type)
	if err != nil {
		return nil, config.Problems{{Pos: p.Pos, Msg: "input " + p.Name + ": " + err.Error()}}
	}
	var c common
	plugin := spec.New()
	probs, err := e.decode(cfg, p, plugin, &c)
	if err != nil {
		return nil, err
	}
	// Keys that failed to decode are zero here, which every check below
	// accepts: each check runs, so that one pass reports every problem.
	bad := func(err error) {
		if err != nil {
			probs = append(probs, config.Problem{Pos: p.Pos, Msg: "input " + p.Name + ": " + err.Error()})
		}
	}
	in := &input{name: p.Name, plugin: plugin, minAge: c.MinAge}
	in.onSuccess, err = parseAction(c.OnSuccess)
	bad(err)
	in.onFailure, err = parseAction(c.OnFailure)
	bad(err)
	if c.MinAge < 0 {
		bad(errors.New("min_age must not be negative"))
	}
	in.maxSize, err = ParseSize("max_file_size", c.MaxSize)
	bad(err)
	in.limits.MaxRecord, err = ParseSize("max_record_size", c.MaxRecord)
	bad(err)
	switch c.Unmatched {
	case "", "keep":
	case "fail":
		in.failUnmatched = true
	default:
		bad(fmt.Errorf("on_unmatched %q: want keep or fail", c.Unmatched))
	}
	if len(probs) > 0 {
		return nil, probs
	}
	return in, nil
}

func (e *Engine) newOutputs(cfg *config.Config, reg *plugins.Registry) error {
	var errs []error
	ledgers, unknown := 0, false
	for _, p := range cfg.Outputs {
		spec, err := reg.Output(p.Type)
		if err != nil {
			errs = append(errs, config.Problems{{Pos: p.Pos, Msg: "output " + p.Name + ": " + err.Error()}})
			unknown = true
			continue
		}
		plugin := spec.New()
		l, isLedger := plugin.(plugins.Ledger)
		sink, isSink := plugin.(plugins.Output)
		if !isLedger && !isSink {
			errs = append(errs, config.Problems{{Pos: p.Pos, Msg: fmt.Sprintf("output %s: type %s is neither a database output nor a sink", p.Name, p.Type)}})
			continue
		}
		if isLedger {
			if ledgers++; ledgers > 1 {
				errs = append(errs, config.Problems{{Pos: p.Pos, Msg: fmt.Sprintf("output %s: only one database output (postgres or sqlite) may hold the ledger and the records", p.Name)}})
			}
		}
		probs, err := e.decode(cfg, p, plugin)
		switch {
		case err != nil:
			errs = append(errs, err)
		case len(probs) > 0:
			errs = append(errs, probs)
		case isLedger && ledgers == 1:
			e.ledger = l
			e.outs = append([]output{{name: p.Name, plugin: plugin}}, e.outs...)
		case !isLedger:
			e.outs = append(e.outs, output{name: p.Name, plugin: plugin, sink: sink})
		}
	}
	if ledgers == 0 && !unknown {
		errs = append(errs, config.Problems{{Pos: config.Pos{File: cfg.Path}, Msg: "no database output: declare one output of type postgres or sqlite"}})
	}
	return errors.Join(errs...)
}

// decode fills a plugin from its entry and lets it check the result,
// unless some value could not be decoded. It returns the entry's
// problems; err is for a misuse of config.Decode.
func (e *Engine) decode(cfg *config.Config, p config.Plugin, plugin any, more ...any) (probs config.Problems, err error) {
	derr := cfg.Decode(p, append([]any{plugin}, more...)...)
	for _, s := range config.Secrets(plugin) {
		e.secret(s)
	}
	if derr != nil && !errors.As(derr, &probs) {
		return nil, derr
	}
	if v, ok := plugin.(plugins.Validator); ok && config.ValuesDecoded(derr) && !e.lenient[p.Pos] {
		for _, err := range split(v.Validate()) {
			probs = append(probs, config.Problem{Pos: p.Pos, Msg: p.Name + ": " + err.Error()})
		}
	}
	return probs, nil
}

// split undoes errors.Join, so that each problem gets its own line.
func split(err error) []error {
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		if err == nil {
			return nil
		}
		return []error{err}
	}
	var out []error
	for _, e := range j.Unwrap() {
		out = append(out, split(e)...)
	}
	return out
}

func (e *Engine) init(ctx context.Context, plugin any, kind, name string) error {
	if i, ok := plugin.(plugins.Initer); ok {
		// A plugin whose Init fails cleans up after itself.
		if err := i.Init(ctx, plugins.Env{Name: name, Logger: e.log.With("plugin", name), Stdout: e.stdout, ReadOnly: e.ro}); err != nil {
			return fmt.Errorf("%s %s: %w", kind, name, err)
		}
	}
	if c, ok := plugin.(plugins.Closer); ok {
		e.closers = append(e.closers, c)
	}
	return nil
}

// WritesStdout tells whether an output writes to standard output.
func (e *Engine) WritesStdout() bool {
	for _, o := range e.outs {
		if w, ok := o.plugin.(plugins.StdoutWriter); ok && w.WritesStdout() {
			return true
		}
	}
	return false
}

// Close releases every plugin.
func (e *Engine) Close() error {
	var errs []error
	for i := len(e.closers) - 1; i >= 0; i-- {
		errs = append(errs, e.closers[i].Close())
	}
	e.closers = nil
	return errors.Join(errs...)
}

// Migrate applies pending database migrations, then creates the file
// types' tables and makes their additive changes; a breaking change is a
// *BreakingError.
func (e *Engine) Migrate(ctx context.Context) error {
	if e.ledger == nil {
		return errors.New("no database output")
	}
	if err := e.ledger.Migrate(ctx); err != nil {
		return err
	}
	return e.tables(ctx)
}

// action is what happens to a file after it is loaded or has failed.
type action struct {
	kind string // keep | delete | move
	dir  string
}

func parseAction(s string) (action, error) {
	switch {
	case s == "" || s == "keep":
		return action{kind: "keep"}, nil
	case s == "delete":
		return action{kind: "delete"}, nil
	case strings.HasPrefix(s, "move:"):
		dir, err := plugins.CleanDir(strings.TrimPrefix(s, "move:"))
		if err != nil {
			return action{}, fmt.Errorf("%s: %v", s, err)
		}
		return action{kind: "move", dir: dir}, nil
	}
	return action{}, fmt.Errorf("unknown action %q: want keep, delete or move:<folder>", s)
}

func (a action) String() string {
	if a.kind == "move" {
		return "move:" + a.dir
	}
	return a.kind
}

// owns reports whether a listed path lies in one of the input's action
// folders, which hold files already dealt with.
func (in *input) owns(p string) bool {
	for _, a := range []action{in.onSuccess, in.onFailure} {
		if a.kind == "move" && (p == a.dir || strings.HasPrefix(p, a.dir+"/")) {
			return true
		}
	}
	return false
}

// apply carries out an action and returns where the file now is.
func (in *input) apply(ctx context.Context, a action, p string) (string, error) {
	switch a.kind {
	case "delete":
		return "", in.plugin.Delete(ctx, p)
	case "move":
		return in.plugin.Move(ctx, p, a.dir)
	}
	return p, nil
}

func base(p string) string { return path.Base(p) }

// ParseSize reads a size in bytes, such as 1048576, 512MiB or 2GB, for
// the YAML key named key; "" is 0, which the caller takes for its default.
// A size must be a whole number of bytes above 0 that fits in an int64.
func ParseSize(key, s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	bad := fmt.Errorf("%s %q: want a whole number of bytes above 0 and below 8EiB, such as 1048576, 512MiB or 2GB", key, s)
	n, err := humanize.ParseBytes(s)
	if err != nil || n == 0 || n > math.MaxInt64 {
		return 0, bad
	}
	// ParseBytes drops a fraction of a byte (0.5 would be 0): a number with
	// a point is worked out exactly instead.
	i := strings.IndexFunc(s, func(r rune) bool { return !unicode.IsDigit(r) && r != '.' && r != ',' })
	if i < 0 {
		i = len(s)
	}
	if num := strings.ReplaceAll(s[:i], ",", ""); strings.Contains(num, ".") {
		unit, err := humanize.ParseBytes("1" + s[i:])
		r, ok := new(big.Rat).SetString(num)
		if err != nil || !ok {
			return 0, bad
		}
		r.Mul(r, new(big.Rat).SetUint64(unit))
		if !r.IsInt() || r.Sign() <= 0 || !r.Num().IsInt64() {
			return 0, bad
		}
		return r.Num().Int64(), nil
	}
	return int64(n), nil
}
