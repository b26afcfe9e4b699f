package main

import (
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/carpipe/carpipe/config"
	"github.com/carpipe/carpipe/engine"
	"github.com/carpipe/carpipe/plugins"
	"github.com/carpipe/carpipe/schemas"
)

// samples is a repeatable flag.
type samples []string

func (s *samples) String() string     { return strings.Join(*s, ",") }
func (s *samples) Set(v string) error { *s = append(*s, v); return nil }

func checkCmd(c *cli, args []string) int {
	f := c.flags("check", true)
	var names samples
	f.Var(&names, "sample", "a file `NAME` that exactly one file type must claim (repeatable)")
	if code, ok := c.parse(f, args); !ok {
		return code
	}
	if f.config == "" {
		fmt.Fprintln(c.stderr, "carpipe: check needs -c FILE")
		return exitUsage
	}
	cfg, err := config.Load(f.config, c.env)
	if cfg == nil {
		c.fail(err)
		return exitUsage
	}
	var problems []string
	var add func(error)
	add = func(err error) {
		var ps config.Problems
		switch {
		case err == nil:
		case errors.As(err, &ps) && !isJoin(err):
			for _, p := range ps {
				problems = append(problems, p.Error())
			}
		case isJoin(err):
			for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
				add(e)
			}
		default:
			problems = append(problems, err.Error())
		}
	}
	add(err)
	lintErr, unset := engine.Lint(cfg, plugins.Default)
	add(lintErr)
	set, serr := schemas.Load(cfg.Schemas, schemas.Options{})
	add(serr)
	if set != nil {
		for _, n := range names {
			t, _, err := set.Route(n)
			switch {
			case err != nil:
				problems = append(problems, "sample "+err.Error())
			case t == nil:
				problems = append(problems, fmt.Sprintf("sample %q matches no file type", n))
			}
		}
	}
	for _, u := range unset {
		fmt.Fprintf(c.stderr, "warning: %s (needed by run)\n", u.Error())
	}
	for _, p := range problems {
		fmt.Fprintln(c.stderr, p)
	}
	if len(problems) > 0 {
		fmt.Fprintf(c.stdout, "%s: %d problem(s)\n", f.config, len(problems))
		return exitUsage
	}
	n := 0
	if set != nil {
		n = len(set.Types)
	}
	fmt.Fprintf(c.stdout, "%s: ok (%d inputs, %d outputs, %d file types)\n", f.config, len(cfg.Inputs), len(cfg.Outputs), n)
	return exitOK
}

func isJoin(err error) bool {
	_, ok := err.(interface{ Unwrap() []error })
	return ok
}

func schemasCmd(c *cli, args []string) int {
	f := c.flags("schemas", true)
	dir := f.String("schemas", "", "schemas `DIR` (default: the config's)")
	if code, ok := c.parse(f, args); !ok {
		return code
	}
	if *dir == "" {
		cfg, code, ok := c.loadConfig(f)
		if !ok {
			return code
		}
		*dir = cfg.Schemas
	}
	set, err := schemas.Load(*dir, schemas.Options{})
	if err != nil {
		c.fail(err)
		return exitUsage
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TYPE\tMATCH\tRECORDS\tKEY\tTIME\tON INVALID")
	for _, t := range set.Types {
		key := strings.Join(t.Key, ", ")
		if key == "" {
			key = "(whole record)"
		}
		rec := t.Records
		if rec == "" {
			rec = "(root)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.Name(), t.Match, rec, key, dash(t.Time), t.OnInvalid)
	}
	if err := tw.Flush(); err != nil {
		return exitFatal
	}
	return exitOK
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
