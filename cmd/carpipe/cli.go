package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"syscall"

	"github.com/carpipe/carpipe/config"
	"github.com/carpipe/carpipe/engine"
)

// Exit codes, for every command.
const (
	exitOK      = 0
	exitFatal   = 1
	exitUsage   = 2
	exitPartial = 3
)

// version is set by the build (-ldflags "-X main.version=...").
var version = ""

type command struct {
	name, args, help string
	run              func(c *cli, args []string) int
}

var commands []command

func init() {
	commands = []command{
		{"run", "-c FILE", "load every new file of the pipeline once", runCmd},
		{"migrate", "-c FILE", "apply pending database migrations and update the typed views", migrateCmd},
		{"validate", "[-c FILE | --schemas DIR] [PATH...]", "check files as run would, writing nothing", validateCmd},
		{"check", "-c FILE [--sample NAME]...", "lint a config without connecting anywhere", checkCmd},
		{"schemas", "[-c FILE | --schemas DIR] [--sql]", "list the file types, or the SQL of their views", schemasViewsCmd},
		{"runs", "-c FILE [-n 20]", "show the recent runs", runsCmd},
		{"files", "-c FILE [--status failed]", "show the file ledger, with each failure's reason", filesCmd},
		{"rejects", "-c FILE --file ID", "show a file's rejected records and their errors", rejectsCmd},
		{"reprocess", "-c FILE ID... | --failed", "put failed files back, for the next run to load", reprocessCmd},
		{"plugins", "", "list the plugins with their config keys and samples", pluginsCmd},
		{"config", "schema", "print the JSON Schema of the config file", configCmd},
		{"version", "", "print the version", versionCmd},
		{"help", "", "show this help", helpCmd},
	}
}

// cli is one invocation: its streams, environment and logger.
type cli struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	env            config.Lookup
	log            *slog.Logger
	mask           *masker
	ctx            context.Context
	tune           func(*engine.Options) // a command's extra engine options
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
	if len(args) == 0 {
		c.usage(c.stderr)
		return exitUsage
	}
	name := args[0]
	if name == "-h" || name == "--help" {
		name = "help"
	}
	for _, cmd := range commands {
		if cmd.name == name {
			return cmd.run(c, args[1:])
		}
	}
	fmt.Fprintf(c.stderr, "carpipe: unknown command %q\n\n", name)
	c.usage(c.stderr)
	return exitUsage
}

func (c *cli) usage(w io.Writer) {
	fmt.Fprintln(w, "carpipe loads files into a database exactly once, as a YAML pipeline declares.")
	fmt.Fprintln(w, "\nUsage:")
	for _, cmd := range commands {
		fmt.Fprintf(w, "  carpipe %-10s %-28s %s\n", cmd.name, cmd.args, cmd.help)
	}
	fmt.Fprintln(w, "\nExit codes: 0 success, 1 fatal error, 2 usage or config error, 3 some files failed or records were rejected.")
	fmt.Fprintln(w, "Run 'carpipe COMMAND -h' for a command's flags.")
}

func helpCmd(c *cli, args []string) int {
	c.usage(c.stdout)
	return exitOK
}

func versionCmd(c *cli, args []string) int {
	v := version
	if v == "" {
		v = "devel"
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
	}
	fmt.Fprintln(c.stdout, "carpipe", v)
	return exitOK
}

// flags is the flag set every command starts from.
type flags struct {
	*flag.FlagSet
	config    string
	logFormat string
	logLevel  string
}

func (c *cli) flags(name string, withConfig bool) *flags {
	f := &flags{FlagSet: flag.NewFlagSet("carpipe "+name, flag.ContinueOnError)}
	f.SetOutput(c.stderr)
	if withConfig {
		f.StringVar(&f.config, "c", "", "the pipeline's config `FILE`")
		f.StringVar(&f.config, "config", "", "same as -c")
	}
	f.StringVar(&f.logFormat, "log-format", "text", "log format: text or json")
	f.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	return f
}

// parse parses flags and sets the logger; it returns an exit code when the
// command should stop.
func (c *cli) parse(f *flags, args []string) (int, bool) {
	if err := f.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, false
		}
		return exitUsage, false
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
		fmt.Fprintf(c.stderr, "carpipe: --log-level %q: want debug, info, warn or error\n", f.logLevel)
		return exitUsage, false
	}
	opts := &slog.HandlerOptions{Level: level}
	switch f.logFormat {
	case "text":
		c.log = slog.New(slog.NewTextHandler(c.stderr, opts))
	case "json":
		c.log = slog.New(slog.NewJSONHandler(c.stderr, opts))
	default:
		fmt.Fprintf(c.stderr, "carpipe: --log-format %q: want text or json\n", f.logFormat)
		return exitUsage, false
	}
	return 0, true
}

// loadConfig reads the config named by -c.
func (c *cli) loadConfig(f *flags) (*config.Config, int, bool) {
	if f.config == "" {
		if v, ok := c.env("CARPIPE_CONFIG"); ok && v != "" {
			f.config = v
		} else {
			fmt.Fprintln(c.stderr, "carpipe: no config: give -c FILE (or set CARPIPE_CONFIG)")
			return nil, exitUsage, false
		}
	}
	cfg, err := config.Load(f.config, c.env)
	if err != nil {
		c.fail(err)
		return nil, exitUsage, false
	}
	return cfg, 0, true
}

// fail prints an error; the writer masks secrets.
func (c *cli) fail(err error) {
	fmt.Fprintf(c.stderr, "carpipe: %v\n", err)
}

// errCode picks the exit code for an error: config problems are the user's
// to fix (2), anything else is fatal (1).
func errCode(err error) int {
	var ps config.Problems
	if errors.As(err, &ps) {
		return exitUsage
	}
	return exitFatal
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
