package main

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/spf13/cobra"

	"github.com/carpipe/carpipe/config"
	"github.com/carpipe/carpipe/engine"
	"github.com/carpipe/carpipe/plugins"
	"github.com/carpipe/carpipe/schemas"
)

type checkOpts struct {
	names       []string
	format      *format
	offline     bool
	againstData bool
	limit       int
}

func (c *cli) checkCmd() *cobra.Command {
	o := &checkOpts{}
	cmd := c.command("check", "Lint a config, and plan its database's tables",
		`Check a config file as run would read it: its YAML, every input and output
entry, the schemas folder, and, with --sample, that a file name is claimed
by exactly one file type. Every problem is reported in one pass. Variables
that are not set are warnings: only the commands that use the entry need
them.

Then, unless --offline, check opens the database output read-only and
prints the plan: the tables run or migrate would create, the columns they
would add, and the breaking changes they would refuse (a different key, a
column whose type would change, a renamed table). It never writes, so a
role that may only SELECT will do. A database that cannot be reached is a
warning: the lint still decides the exit code. A breaking change is exit 2,
as run and migrate would refuse it.

With --against-data, the stored rows of every file type whose schema
changed are checked against the schema of today, as run would check a new
record: check reports how many the new schema would reject, and which (up
to --limit per type). Some rejected rows make the exit code 3.`,
		`  carpipe check -c config/pipeline.yaml
  carpipe check -c config/pipeline.yaml --sample vehicles_status_1600000000.json
  carpipe check -c config/pipeline.yaml --format json
  carpipe check -c config/pipeline.yaml --against-data --limit 20
  carpipe check -c config/pipeline.yaml --offline`,
		nil, func(cmd *cobra.Command, args []string) error {
			given := cmd.Flags().Changed
			switch {
			case given("limit") && !o.againstData:
				return noEffect("--limit", "without --against-data")
			case o.againstData && o.offline:
				return usageError("--against-data reads the database, which --offline forbids")
			case o.limit < 0:
				return usageError("--limit %d: want 0 or more", o.limit)
			}
			return c.check(o)
		})
	c.configFlag(cmd)
	cmd.Flags().StringArrayVar(&o.names, "sample", nil, "a file `NAME` that exactly one file type must claim (repeatable)")
	cmd.Flags().BoolVar(&o.offline, "offline", false, "only lint: do not open the database to plan its tables")
	cmd.Flags().BoolVar(&o.againstData, "against-data", false, "check the stored rows of every changed file type against its schema of today")
	cmd.Flags().IntVar(&o.limit, "limit", 10, "with --against-data: how many rejected rows to show per file type")
	o.format = formatFlag(cmd, "text")
	return cmd
}

type checkJSON struct {
	Config      string            `json:"config"`
	OK          bool              `json:"ok"`
	Problems    []problemJSON     `json:"problems"`
	Warnings    []problemJSON     `json:"warnings"`
	Inputs      int               `json:"inputs"`
	Outputs     int               `json:"outputs"`
	FileTypes   int               `json:"file_types"`
	Plan        *planJSON         `json:"plan"` // null when not planned
	AgainstData *[]engine.Verdict `json:"against_data,omitempty"`
}

type planJSON struct {
	Output   string           `json:"output"`
	Type     string           `json:"type"`
	Migrated bool             `json:"migrated"`
	Changes  []plugins.Change `json:"changes"`
	Create   int              `json:"create"`
	Add      int              `json:"add"`
	Breaking int              `json:"breaking"`
	Schema   int              `json:"schema"`
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

func (c *cli) check(o *checkOpts) error {
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
		for _, n := range o.names {
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
	doc := checkJSON{Config: c.configPath, OK: len(problems) == 0, Problems: problemsJSON(problems),
		Inputs: len(cfg.Inputs), Outputs: len(cfg.Outputs), FileTypes: types}
	var p *planned
	if len(problems) == 0 && !o.offline {
		var err error
		p, err = c.plan(cfg, set, o)
		if err != nil {
			if o.againstData {
				return fatalError(fmt.Errorf("plan not available: %w", err))
			}
			warnings = append(warnings, fmt.Errorf("plan not available: %w", err))
		}
	}
	if o.format.value == "json" {
		doc.Warnings = problemsJSON(warnings)
		if p != nil {
			doc.Plan = p.json()
			if o.againstData {
				doc.AgainstData = &p.verdicts
			}
		}
		if err := c.writeJSON(doc); err != nil {
			return err
		}
		if code := checkCode(problems, p); code != exitOK {
			return &exitError{code: code}
		}
		return nil
	}
	c.problems(slog.LevelWarn, warnings)
	c.problems(slog.LevelError, problems)
	if len(problems) > 0 {
		fmt.Fprintf(c.stdout, "%s: %d problem(s)\n", c.configPath, len(problems))
		return &exitError{code: exitUsage}
	}
	fmt.Fprintf(c.stdout, "%s: ok (%d inputs, %d outputs, %d file types)\n", c.configPath, len(cfg.Inputs), len(cfg.Outputs), types)
	if p == nil {
		return nil
	}
	p.write(c)
	switch code := checkCode(problems, p); code {
	case exitUsage:
		return &exitError{exitUsage, fmt.Errorf("%d breaking change(s): run and migrate refuse to start until the schemas and the tables agree", p.count(plugins.ChangeBreaking))}
	case exitPartial:
		return &exitError{code: exitPartial}
	}
	return nil
}

// checkCode is 2 for a problem or a breaking change, 3 for stored rows the
// schemas would now reject.
func checkCode(problems []error, p *planned) int {
	switch {
	case len(problems) > 0 || p != nil && p.plan.Breaking():
		return exitUsage
	case p != nil && p.rejected() > 0:
		return exitPartial
	}
	return exitOK
}

// planned is what check learnt from the database.
type planned struct {
	output   config.Plugin
	migrated bool
	plan     plugins.Plan
	tables   []plugins.Table // as the schemas say
	verdicts []engine.Verdict
	notes    string // why the database is not migrated
}

// plan opens the database read-only and plans its tables; with
// --against-data it also reads the stored rows of the changed types.
func (c *cli) plan(cfg *config.Config, set *schemas.Set, o *checkOpts) (*planned, error) {
	lc := *cfg
	lc.Inputs, lc.Outputs = nil, ledgerEntries(cfg.Outputs)
	if len(lc.Outputs) == 0 {
		return nil, nil // the lint said there is no database output
	}
	p := &planned{output: lc.Outputs[0], migrated: true, tables: set.Tables()}
	e, err := c.openLedger(&lc, set, true)
	if err == nil {
		defer e.Close()
		p.plan, err = e.Plan(c.ctx)
	}
	if errors.Is(err, plugins.ErrNotMigrated) {
		// Nothing is stored yet: every table is to be created.
		p.migrated, p.notes = false, err.Error()
		p.plan = plugins.Plan{}
		for _, t := range p.tables {
			p.plan.Changes = append(p.plan.Changes, plugins.Change{FileType: t.FileType, Table: t.Name, Kind: plugins.ChangeCreate})
		}
		if o.againstData {
			p.verdicts = []engine.Verdict{}
		}
		return p, nil
	}
	if err != nil {
		return nil, err
	}
	if o.againstData {
		p.verdicts, err = e.AgainstData(c.ctx, p.plan, o.limit, recheck(set))
		if err != nil {
			return nil, err
		}
		if p.verdicts == nil {
			p.verdicts = []engine.Verdict{}
		}
	}
	return p, nil
}

// recheck gives a stored record the verdict run would give it today.
func recheck(set *schemas.Set) func(fileType string, record []byte) []plugins.FieldError {
	byName := map[string]*schemas.Type{}
	for _, t := range set.Types {
		byName[t.Name()] = t
	}
	return func(fileType string, record []byte) []plugins.FieldError {
		t := byName[fileType]
		if t == nil {
			return []plugins.FieldError{{Message: "no schema declares file type " + fileType}}
		}
		_, errs := t.Record(record)
		return errs
	}
}

func (p *planned) count(kind string) int {
	n := 0
	for _, c := range p.plan.Changes {
		if c.Kind == kind {
			n++
		}
	}
	return n
}

func (p *planned) rejected() int64 {
	var n int64
	for _, v := range p.verdicts {
		n += v.Rejected
	}
	return n
}

func (p *planned) json() *planJSON {
	changes := p.plan.Changes
	if changes == nil {
		changes = []plugins.Change{}
	}
	return &planJSON{Output: p.output.Name, Type: p.output.Type, Migrated: p.migrated, Changes: changes,
		Create: p.count(plugins.ChangeCreate), Add: p.count(plugins.ChangeAddColumn),
		Breaking: p.count(plugins.ChangeBreaking), Schema: p.count(plugins.ChangeSchema)}
}

// table is the table of a file type as the schemas say.
func (p *planned) table(fileType string) (plugins.Table, bool) {
	for _, t := range p.tables {
		if t.FileType == fileType {
			return t, true
		}
	}
	return plugins.Table{}, false
}

func (p *planned) write(c *cli) {
	w := c.stdout
	fmt.Fprintf(w, "Plan for %s output %s:\n", p.output.Type, p.output.Name)
	if !p.migrated {
		fmt.Fprintf(w, "  database not migrated: every table will be created by carpipe migrate (%s)\n", p.notes)
	}
	if len(p.plan.Changes) == 0 {
		fmt.Fprintln(w, "No changes: the database matches the schemas.")
	} else {
		for _, ch := range p.plan.Changes {
			fmt.Fprintf(w, "  %s\n", p.line(ch))
		}
		fmt.Fprintf(w, "%d to create, %d to add, %d breaking", p.count(plugins.ChangeCreate), p.count(plugins.ChangeAddColumn), p.count(plugins.ChangeBreaking))
		if n := p.count(plugins.ChangeSchema); n > 0 {
			fmt.Fprintf(w, ", %d schema(s) changed with the table unchanged", n)
		}
		fmt.Fprintln(w, ".")
	}
	if p.verdicts == nil {
		return
	}
	if len(p.verdicts) == 0 {
		fmt.Fprintln(w, "Against the stored data: no stored table changes; nothing to check.")
		return
	}
	fmt.Fprintln(w, "Against the stored data:")
	for _, v := range p.verdicts {
		if v.Rejected == 0 {
			fmt.Fprintf(w, "  %s: %d row(s) checked, all pass the new schema\n", v.Table, v.Checked)
			continue
		}
		fmt.Fprintf(w, "  %s: %d row(s) checked, %d the new schema would reject\n", v.Table, v.Checked, v.Rejected)
		for _, r := range v.Rows {
			msgs := make([]string, len(r.Errors))
			for i, fe := range r.Errors {
				msgs[i] = fe.Message
				if fe.Pointer != "" {
					msgs[i] = fe.Pointer + ": " + fe.Message
				}
			}
			fmt.Fprintf(w, "    file %d, record %d: %s\n", r.FileID, r.Index, strings.Join(msgs, "; "))
		}
		if more := v.Rejected - int64(len(v.Rows)); more > 0 {
			fmt.Fprintf(w, "    ... and %d more (--limit shows more)\n", more)
		}
	}
}

// line is one change as a person reads it.
func (p *planned) line(ch plugins.Change) string {
	t, _ := p.table(ch.FileType)
	switch ch.Kind {
	case plugins.ChangeCreate:
		key := []string{"_key"}
		if len(t.Key) > 0 {
			key = key[:0]
			for _, k := range t.Key {
				key = append(key, t.Columns[k].Name)
			}
		}
		return fmt.Sprintf("+ create table %s (%d columns, unique (%s))", ch.Table, len(t.Columns), strings.Join(key, ", "))
	case plugins.ChangeAddColumn:
		typ := ""
		for _, col := range t.Columns {
			if col.Name == ch.Column {
				typ = " " + col.Type
			}
		}
		return fmt.Sprintf("+ add column %s.%s%s (nullable; old rows read NULL)", ch.Table, ch.Column, typ)
	case plugins.ChangeBreaking:
		return fmt.Sprintf("! breaking: %s: %s", ch.Table, ch.Detail)
	case plugins.ChangeSchema:
		return fmt.Sprintf("~ schema changed: %s: the table stays as it is (--against-data checks its rows)", ch.Table)
	}
	return fmt.Sprintf("? %s: %s: %s", ch.Kind, ch.Table, ch.Detail)
}
