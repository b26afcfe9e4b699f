package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/carpipe/carpipe/plugins"
	"github.com/carpipe/carpipe/schemas"
)

func (c *cli) schemasCmd() *cobra.Command {
	var dir, dialect string
	var sql bool
	var out *format
	cmd := c.command("schemas", "List the file types, or the SQL of their tables",
		`List the file types of a schemas folder: the file names each claims, where
its records are, their key and time, and what an invalid record does. With
--sql, print the SQL that creates each file type's table and its unique
index on an empty database instead, for a DBA to review or apply ahead of
time. Reads the schema files only; 'carpipe check' compares them with a
database.`,
		`  carpipe schemas --schemas schemas
  carpipe schemas -c config/pipeline.yaml --format json
  carpipe schemas -c config/pipeline.yaml --sql
  carpipe schemas --schemas schemas --sql --dialect sqlite`,
		nil, func(cmd *cobra.Command, args []string) error {
			given := cmd.Flags().Changed
			switch {
			case !sql && dialect != "":
				return noEffect("--dialect", "without --sql")
			case sql && given("format"):
				return noEffect("--format", "with --sql, which prints SQL")
			case given("config") && dir != "" && !sql:
				return noEffect("-c", "with --schemas, which names the file types")
			case given("config") && dir != "" && dialect != "":
				return noEffect("-c", "with --schemas and --dialect, which say all it would")
			}
			if c.configPath != "" || dir == "" {
				cfg, err := c.loadConfig()
				if err != nil {
					return err
				}
				if dir == "" {
					dir = cfg.Schemas
				}
				for _, o := range cfg.Outputs {
					if dialect == "" && ddlWriter(o.Type) != nil {
						dialect = o.Type
					}
				}
			}
			set, err := schemas.LoadContext(c.ctx, dir, schemas.Options{})
			if err != nil {
				return &exitError{exitUsage, err}
			}
			if !sql {
				return c.listTypes(set, out.value)
			}
			if dialect == "" {
				dialect = "postgres"
			}
			w := ddlWriter(dialect)
			if w == nil {
				return usageError("--dialect %q: want postgres or sqlite", dialect)
			}
			text, err := w.TableSQL(set.Tables())
			if err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "-- Tables of the file types for %s, on an empty database; carpipe run and\n-- carpipe migrate create them, and 'carpipe check' plans the changes.\n\n", dialect)
			fmt.Fprint(c.stdout, text)
			return nil
		})
	c.configFlag(cmd)
	cmd.Flags().StringVar(&dir, "schemas", "", "schemas `DIR` (default: the config's)")
	cmd.Flags().BoolVar(&sql, "sql", false, "print the SQL that creates the file types' tables")
	cmd.Flags().StringVar(&dialect, "dialect", "", "with --sql: postgres or sqlite (default: the config's database output, else postgres)")
	complete(cmd, "dialect", "postgres", "sqlite")
	out = formatFlag(cmd, "table")
	return cmd
}

type typeJSON struct {
	Type      string   `json:"type"`
	Table     string   `json:"table"`
	Match     string   `json:"match"`
	Records   string   `json:"records"`
	Key       []string `json:"key"`
	Time      string   `json:"time"`
	OnInvalid string   `json:"on_invalid"`
}

func (c *cli) listTypes(set *schemas.Set, format string) error {
	tables := map[string]string{}
	for _, t := range set.Tables() {
		tables[t.FileType] = t.Name
	}
	if format == "json" {
		out := make([]typeJSON, len(set.Types))
		for i, t := range set.Types {
			out[i] = typeJSON{Type: t.Name(), Table: tables[t.Name()], Match: t.Match.String(), Records: t.Records, Key: t.Key, Time: t.Time, OnInvalid: t.OnInvalid}
			if out[i].Key == nil {
				out[i].Key = []string{}
			}
		}
		return c.writeJSON(out)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TYPE\tTABLE\tMATCH\tRECORDS\tKEY\tTIME\tON INVALID")
	for _, t := range set.Types {
		key := strings.Join(t.Key, ", ")
		if key == "" {
			key = "(whole record)"
		}
		rec := t.Records
		if rec == "" {
			rec = "(root)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.Name(), tables[t.Name()], t.Match, rec, key, dash(t.Time), t.OnInvalid)
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// ddlWriter is the output type that writes the tables' SQL, if typ is one.
func ddlWriter(typ string) plugins.DDLWriter {
	spec, err := plugins.Default.Output(typ)
	if err != nil {
		return nil
	}
	w, _ := spec.New().(plugins.DDLWriter)
	return w
}
