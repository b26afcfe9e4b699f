package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"regexp"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/carpipe/carpipe/config"
	"github.com/carpipe/carpipe/engine"
	"github.com/carpipe/carpipe/plugins"
)

// Exit codes, for every command.
const (
	exitOK      = 0
	exitFatal   = 1
	exitUsage   = 2
	exitPartial = 3
)

const exitCodes = `Exit codes, the same for every command:
  0  success
  1  fatal: the database or an input failed, or what was asked for is not
     there (rejects --file with an ID the ledger does not hold)
  2  usage or config error: a bad command, flag, argument or config file,
     or a schema change the database's tables cannot follow by themselves
     (a different key, a column type, a table name: see check)
  3  partial: some files failed or records were rejected (validate: some
     files are invalid; reprocess: some files were not put back; check
     --against-data: the schemas would reject some stored rows)`

// version is set by the build (-ldflags "-X main.version=...").
var version = ""

// cli is one invocation: its streams, environment, flags and logger.
type cli struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	env            config.Lookup
	log            *slog.Logger
	json           bool // --log-format json: every line on stderr is a JSON object
	mask           *masker
	ctx            context.Context
	tune           func(*engine.Options) // a command's extra engine options

	configPath          string // -c
	logFormat, logLevel string
}

// Run is the whole command line; main only exits with its result.
func Run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	// Records are short-lived garbage over a small live heap: collecting
	// less often saves a fifth of the CPU and keeps memory flat.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if path := os.Getenv("CARPIPE_CPUPROFILE"); path != "" {
		if f, err := os.Create(path); err == nil {
			pprof.StartCPUProfile(f)
			defer func() { pprof.StopCPUProfile(); f.Close() }()
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The first signal stops gracefully; a second one kills as usual.
	context.AfterFunc(ctx, stop)
	m := &masker{}
	c := &cli{stdin: stdin, stdout: stdout, stderr: &maskWriter{w: stderr, m: m}, env: os.LookupEnv, mask: m, ctx: ctx}
	return c.main(args)
}

func (c *cli) main(args []string) int {
	// Errors met before the flags are parsed are logged as the line asks.
	format, level := scanLogFlags(args)
	if c.setLogger(format, level) != nil {
		c.setLogger("text", "info")
	}
	root := c.root()
	root.SetArgs(args)
	return c.exit(root.ExecuteContext(c.ctx))
}

// exitError is a command's result: its exit code and what to report (err
// is nil when there is nothing to say, as for a partial run).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

func usageError(format string, args ...any) error {
	return &exitError{exitUsage, fmt.Errorf(format, args...)}
}

func fatalError(err error) error { return &exitError{exitFatal, err} }

// configError is exit 2 for the user's config, 1 for anything else.
func configError(err error) error {
	var ps config.Problems
	if errors.As(err, &ps) {
		return &exitError{exitUsage, err}
	}
	return fatalError(err)
}

var errPartial = &exitError{code: exitPartial}

func (c *cli) exit(err error) int {
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if !errors.As(err, &ee) {
		// Only cobra's own errors get here: an unknown command or an
		// argument it refused.
		ee = &exitError{exitUsage, fmt.Errorf("%w\nRun 'carpipe --help' for usage.", err)}
	}
	if errors.Is(ee.err, plugins.ErrBreaking) {
		// The schemas ask for what only a person can decide.
		ee = &exitError{exitUsage, c.breaking(ee.err)}
	}
	if ee.err != nil {
		c.report(ee.err, ee.code)
	}
	return ee.code
}

// breaking adds what to do next to a refused plan; under JSON logs, each
// breaking change gets its own line first.
func (c *cli) breaking(err error) error {
	var be *engine.BreakingError
	if c.json && errors.As(err, &be) {
		for _, ch := range be.Changes {
			c.log.Error("breaking schema change", "file_type", ch.FileType, "table", ch.Table, "detail", ch.Detail)
		}
	}
	cfg := c.configPath
	if cfg == "" {
		cfg = "FILE"
	}
	return fmt.Errorf("%w\n'carpipe check -c %s' prints the whole plan", err, cfg)
}

// report writes an error to standard error, masked: as text, or as one
// JSON object per problem under --log-format json.
func (c *cli) report(err error, code int) {
	if !c.json {
		fmt.Fprintf(c.stderr, "carpipe: %v\n", err)
		return
	}
	errs := flatten(err)
	if len(errs) == 1 {
		if _, ok := errs[0].(config.Problem); !ok {
			c.log.Error("command failed", "error", err.Error(), "exit_code", code)
			return
		}
	}
	c.problems(slog.LevelError, errs)
}

// problems writes config problems one a line, or one JSON object each.
func (c *cli) problems(level slog.Level, errs []error) {
	for _, err := range errs {
		var p config.Problem
		switch {
		case !c.json && level == slog.LevelWarn:
			fmt.Fprintf(c.stderr, "warning: %s\n", err)
		case !c.json:
			fmt.Fprintln(c.stderr, err)
		case errors.As(err, &p):
			c.log.Log(c.ctx, level, "config problem", "file", p.Pos.File, "line", p.Pos.Line, "col", p.Pos.Col, "problem", p.Msg)
		default:
			c.log.Log(c.ctx, level, "config problem", "problem", err.Error())
		}
	}
}

// flatten lists the problems of an error: each config.Problem apart.
func flatten(err error) []error {
	var ps config.Problems
	if errors.As(err, &ps) && !isJoin(err) {
		out := make([]error, len(ps))
		for i, p := range ps {
			out[i] = p
		}
		return out
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	if err == nil {
		return nil
	}
	return []error{err}
}

func isJoin(err error) bool {
	_, ok := err.(interface{ Unwrap() []error })
	return ok
}

// scanLogFlags finds --log-format and --log-level before cobra parses
// the line, so that even a flag error is logged as asked.
func scanLogFlags(args []string) (format, level string) {
	format, level = "text", "info"
	for i := 0; i < len(args) && args[i] != "--"; i++ {
		for name, v := range map[string]*string{"--log-format": &format, "--log-level": &level} {
			if val, ok := strings.CutPrefix(args[i], name+"="); ok {
				*v = val
			} else if args[i] == name && i+1 < len(args) {
				*v = args[i+1]
			}
		}
	}
	return format, level
}

func (c *cli) setLogger(format, level string) error {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "text":
		c.log, c.json = slog.New(slog.NewTextHandler(c.stderr, opts)), false
	case "json":
		c.log, c.json = slog.New(slog.NewJSONHandler(c.stderr, opts)), true
	default:
		return fmt.Errorf("--log-format %q: want text or json", format)
	}
	return nil
}

func (c *cli) root() *cobra.Command {
	root := &cobra.Command{
		Use:   "carpipe",
		Short: "Load files into a database exactly once, as a YAML pipeline declares",
		Long: `carpipe loads files into a database exactly once, as a YAML pipeline declares:
it lists its inputs, checks each file against its JSON Schema, loads the
records in one transaction per file, then moves the file.

` + exitCodes,
		Example: `  carpipe run -c config/demo.yaml
  carpipe validate --schemas schemas testdata/sample
  carpipe help run`,
		Version:       versionString(),
		SilenceErrors: true,
		SilenceUsage:  true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.needsCommand(cmd)
		},
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if err := c.setLogger(c.logFormat, c.logLevel); err != nil {
				return &exitError{exitUsage, err}
			}
			return nil
		},
	}
	root.SetVersionTemplate("carpipe {{.Version}}\n")
	root.SetOut(c.stdout)
	root.SetErr(c.stderr)
	root.SetIn(c.stdin)
	root.SetFlagErrorFunc(flagError)
	c.globalFlags(root.PersistentFlags())
	complete(root, "log-format", "text", "json")
	complete(root, "log-level", "debug", "info", "warn", "error")
	root.SetHelpCommand(c.helpCmd(root))
	root.AddCommand(c.runCmd(), c.migrateCmd(), c.validateCmd(), c.checkCmd(), c.schemasCmd(),
		c.runsCmd(), c.filesCmd(), c.rejectsCmd(), c.reprocessCmd(), c.pluginsCmd(), c.configCmd(), c.versionCmd())
	return root
}

// needsCommand is a parent command given no subcommand: its help on
// standard error, and exit 2.
func (c *cli) needsCommand(cmd *cobra.Command) error {
	if c.json {
		return usageError("%s needs a command; see %s --help", cmd.CommandPath(), cmd.CommandPath())
	}
	cmd.SetOut(c.stderr)
	cmd.Help()
	return &exitError{code: exitUsage}
}

// helpCmd is cobra's help, but a topic it does not know is exit 2.
func (c *cli) helpCmd(root *cobra.Command) *cobra.Command {
	return &cobra.Command{
		Use:   "help [command]",
		Short: "Help about any command",
		Long:  "Help about any command: what it does, its flags and examples.",
		Example: `  carpipe help run
  carpipe help config schema`,
		ValidArgsFunction: func(cmd *cobra.Command, args []string, prefix string) ([]cobra.Completion, cobra.ShellCompDirective) {
			var out []cobra.Completion
			for _, sub := range root.Commands() {
				if sub.IsAvailableCommand() && strings.HasPrefix(sub.Name(), prefix) {
					out = append(out, sub.Name())
				}
			}
			return out, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			target, _, err := root.Find(args)
			if err != nil {
				return usageError("%v\nRun 'carpipe --help' for usage.", err)
			}
			target.InitDefaultHelpFlag() // as -h would, so that help lists it
			target.InitDefaultVersionFlag()
			return target.Help()
		},
	}
}

// globalFlags are the flags of every command.
func (c *cli) globalFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.logFormat, "log-format", "text", "log format: text or json (json: every line on standard error is one JSON object)")
	fs.StringVar(&c.logLevel, "log-level", "info", "log level: debug, info, warn or error")
}

var shorthandError = regexp.MustCompile(`in -([A-Za-z][-A-Za-z]+)`)

// flagError makes a flag error a usage error, pointing to the help.
func flagError(cmd *cobra.Command, err error) error {
	msg := err.Error()
	// Go's flag package took -format; pflag reads it as -f -o -r...
	if m := shorthandError.FindStringSubmatch(msg); m != nil && cmd.Flags().Lookup(strings.Split(m[1], "=")[0]) != nil {
		msg += fmt.Sprintf(" (long flags take two dashes: --%s)", m[1])
	}
	return usageError("%s\nRun '%s --help' for usage.", msg, cmd.CommandPath())
}

// command builds a subcommand whose errors carry exit codes: a plain
// error from run is fatal.
func (c *cli) command(use, short, long, example string, args cobra.PositionalArgs, run func(cmd *cobra.Command, args []string) error) *cobra.Command {
	if args == nil {
		args = noArgs
	}
	return &cobra.Command{
		Use: use, Short: short, Long: long + "\n\n" + exitCodes, Example: example, Args: args,
		RunE: func(cmd *cobra.Command, args []string) error {
			err := run(cmd, args)
			var ee *exitError
			if err != nil && !errors.As(err, &ee) {
				return fatalError(err)
			}
			return err
		},
	}
}

func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageError("unexpected argument %q\nRun '%s --help' for usage.", args[0], cmd.CommandPath())
	}
	return nil
}

// configFlag adds -c; $CARPIPE_CONFIG stands in for it.
func (c *cli) configFlag(cmd *cobra.Command) {
	cmd.Flags().StringVarP(&c.configPath, "config", "c", "", "the pipeline's config `FILE` (default: $CARPIPE_CONFIG)")
	cmd.MarkFlagFilename("config", "yaml", "yml")
}

// complete offers a flag's values to shell completion.
func complete(cmd *cobra.Command, flag string, values ...string) {
	cmd.RegisterFlagCompletionFunc(flag, cobra.FixedCompletions(values, cobra.ShellCompDirectiveNoFileComp))
}

// format is a --format flag: the human form (text or table, which are
// synonyms) or one of the others.
type format struct {
	human  string
	others []string
	value  string
}

var _ pflag.Value = (*format)(nil)

func (f *format) String() string { return f.value }
func (f *format) Type() string   { return "format" }
func (f *format) Set(v string) error {
	switch {
	case v == "text" || v == "table":
		f.value = f.human
	case slices.Contains(f.others, v):
		f.value = v
	default:
		return fmt.Errorf("want %s", orList(f.names()))
	}
	return nil
}

func (f *format) names() []string { return append([]string{f.human}, f.others...) }

// formatFlag adds --format; human is the default.
func formatFlag(cmd *cobra.Command, human string, others ...string) *format {
	f := &format{human: human, others: others, value: human}
	if len(others) == 0 {
		others = []string{"json"}
		f.others = others
	}
	cmd.Flags().Var(f, "format", "output: "+orList(f.names()))
	complete(cmd, "format", f.names()...)
	return f
}

// orList writes "a, b or c".
func orList(s []string) string {
	if len(s) < 2 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}

// noEffect is the error for a flag given where it changes nothing.
func noEffect(flag, why string) error {
	return usageError("%s has no effect %s", flag, why)
}

// loadConfig reads the config named by -c, or $CARPIPE_CONFIG.
func (c *cli) loadConfig() (*config.Config, error) {
	if c.configPath == "" {
		if v, ok := c.env("CARPIPE_CONFIG"); ok && v != "" {
			c.configPath = v
		} else {
			return nil, usageError("no config: give -c FILE (or set CARPIPE_CONFIG)")
		}
	}
	cfg, err := config.Load(c.configPath, c.env)
	if err != nil {
		return nil, &exitError{exitUsage, err}
	}
	return cfg, nil
}

// unset fails on the unset variables of the entries a command uses.
func unset(ps ...[]config.Plugin) error {
	var probs config.Problems
	for _, list := range ps {
		for _, p := range list {
			probs = append(probs, p.Unset...)
		}
	}
	if err := probs.Err(); err != nil {
		return &exitError{exitUsage, err}
	}
	return nil
}

// notMigrated adds what to do to an error about a database without
// carpipe's tables.
func (c *cli) notMigrated(err error) error {
	if errors.Is(err, plugins.ErrNotMigrated) {
		cfg := c.configPath
		if cfg == "" {
			cfg = "FILE"
		}
		return fmt.Errorf("%w; 'carpipe migrate -c %s' creates or updates carpipe's tables", err, cfg)
	}
	return err
}

func versionString() string {
	v := version
	if v == "" {
		v = "devel"
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
	}
	return v
}

func (c *cli) versionCmd() *cobra.Command {
	return c.command("version", "Print the version", "Print carpipe's version, as --version does.",
		"  carpipe version", nil, func(cmd *cobra.Command, args []string) error {
			fmt.Fprintln(c.stdout, "carpipe", versionString())
			return nil
		})
}

// masker replaces secret values with *** in everything written.
type masker struct {
	mu      sync.RWMutex
	secrets []string
}

func (m *masker) add(s string) {
	if len(s) < 3 { // masking "a" would mangle every line
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.secrets = append(m.secrets, s)
	sort.Slice(m.secrets, func(i, j int) bool { return len(m.secrets[i]) > len(m.secrets[j]) })
}

func (m *masker) apply(s string) string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	for _, sec := range m.secrets {
		s = strings.ReplaceAll(s, sec, "***")
	}
	return s
}

type maskWriter struct {
	w io.Writer
	m *masker
}

func (mw *maskWriter) Write(p []byte) (int, error) {
	if _, err := io.WriteString(mw.w, mw.m.apply(string(p))); err != nil {
		return 0, err
	}
	return len(p), nil
}
