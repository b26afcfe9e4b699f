package main

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/carpipe/carpipe/config"
	"github.com/carpipe/carpipe/engine"
	"github.com/carpipe/carpipe/plugins"
	"github.com/carpipe/carpipe/schemas"
)

func (c *cli) checkCmd() *cobra.Command {
	var names []string
	var out *format
	cmd := c.command("check", "Lint a config without connecting anywhere",
		`Check a config file as run would read it, without connecting to anything
or writing anything: its YAML, every input and output entry, the schemas
folder, and, with --sample, that a file name is claimed by exactly one file
type. Every problem is reported in one pass. Variables that are not set are
warnings: only the commands that use the entry need them.`,
		`  carpipe check -c config/pipeline.yaml
  carpipe check -c config/pipeline.yaml --sample vehicles_status_1600000000.json
  carpipe check -c config/pipeline.yaml --format json`,
		nil, func(cmd *cobra.Command, args []string) error {
			return c.check(names, out.value)
		})
	c.configFlag(cmd)
	cmd.Flags().StringArrayVar(&names, "sample", nil, "a file `NAME` that exactly one file type must claim (repeatable)")
	out = formatFlag(cmd, "text")
	return cmd
}

type checkJSON struct {
	Config    string        `json:"config"`
	OK        bool          `json:"ok"`
	Problems  []problemJSON `json:"problems"`
	Warnings  []problemJSON `json:"warnings"`
	Inputs    int           `json:"inputs"`
	Outputs   int           `json:"outputs"`
	FileTypes int           `json:"file_types"`
}

type problemJSON struct {
	File    string `json:"file,omitempty"`
	Line    int    `json:"line,omitempty"`
	Col     int    `json:"col,omitempty"`
	Message string `json:"message"`
}

func problemsJSON(errs []error) []problemJSON {
	out := make([]problemJSON, len(errs))
	for i, err := range errs {
		var p config.Problem
		if errors.As(err, &p) {
			out[i] = problemJSON{File: p.Pos.File, Line: p.Pos.Line, Col: p.Pos.Col, Message: p.Msg}
		} else {
			out[i] = problemJSON{Message: err.Error()}
		}
	}
	return out
}

func (c *cli) check(names []string, format string) error {
	if v, ok := c.env("CARPIPE_CONFIG"); ok && c.configPath == "" {
		c.configPath = v
	}
	if c.configPath == "" {
		return usageError("check needs -c FILE (or CARPIPE_CONFIG)")
	}
	cfg, err := config.Load(c.configPath, c.env)
	if cfg == nil {
		return &exitError{exitUsage, err}
	}
	problems := flatten(err)
	lintErr, unset := engine.Lint(cfg, plugins.Default)
	problems = append(problems, flatten(lintErr)...)
	set, serr := schemas.LoadContext(c.ctx, cfg.Schemas, schemas.Options{})
	problems = append(problems, flatten(serr)...)
	types := 0
	if set != nil {
		types = len(set.Types)
		for _, n := range names {
			t, _, err := set.Route(n)
			switch {
			case err != nil:
				problems = append(problems, errors.New("sample "+err.Error()))
			case t == nil:
				problems = append(problems, fmt.Errorf("sample %q matches no file type", n))
			}
		}
	}
	warnings := flatten(unset.Err())
	if format == "json" {
		doc := checkJSON{Config: c.configPath, OK: len(problems) == 0, Problems: problemsJSON(problems),
			Warnings: problemsJSON(warnings), Inputs: len(cfg.Inputs), Outputs: len(cfg.Outputs), FileTypes: types}
		if err := c.writeJSON(doc); err != nil || len(problems) == 0 {
			return err
		}
		return &exitError{code: exitUsage}
	}
	c.problems(slog.LevelWarn, warnings)
	c.problems(slog.LevelError, problems)
	if len(problems) > 0 {
		fmt.Fprintf(c.stdout, "%s: %d problem(s)\n", c.configPath, len(problems))
		return &exitError{code: exitUsage}
	}
	fmt.Fprintf(c.stdout, "%s: ok (%d inputs, %d outputs, %d file types)\n", c.configPath, len(cfg.Inputs), len(cfg.Outputs), types)
	return nil
}
