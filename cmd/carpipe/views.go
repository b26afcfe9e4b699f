package main

import (
	"fmt"

	"github.com/carpipe/carpipe/plugins"
	"github.com/carpipe/carpipe/schemas"
)

// schemasViewsCmd is `carpipe schemas`, which with --sql prints the SQL of
// the typed views instead of the list of file types.
func schemasViewsCmd(c *cli, args []string) int {
	f := c.flags("schemas", true)
	dir := f.String("schemas", "", "schemas `DIR` (default: the config's)")
	sql := f.Bool("sql", false, "print the SQL that creates or replaces the typed views")
	dialect := f.String("dialect", "", "with --sql: postgres or sqlite (default: the config's database output, else postgres)")
	if code, ok := c.parse(f, args); !ok {
		return code
	}
	if !*sql {
		if *dialect != "" {
			fmt.Fprintln(c.stderr, "carpipe: --dialect goes with --sql")
			return exitUsage
		}
		return schemasCmd(c, args)
	}
	if f.config != "" || *dir == "" {
		cfg, code, ok := c.loadConfig(f)
		if !ok {
			return code
		}
		if *dir == "" {
			*dir = cfg.Schemas
		}
		for _, o := range cfg.Outputs {
			if *dialect == "" && viewer(o.Type) != nil {
				*dialect = o.Type
			}
		}
	}
	if *dialect == "" {
		*dialect = "postgres"
	}
	v := viewer(*dialect)
	if v == nil {
		fmt.Fprintf(c.stderr, "carpipe: --dialect %q: want postgres or sqlite\n", *dialect)
		return exitUsage
	}
	set, err := schemas.Load(*dir, schemas.Options{})
	if err != nil {
		c.fail(err)
		return exitUsage
	}
	fmt.Fprintf(c.stdout, "-- Typed views for %s; carpipe run and carpipe migrate apply them when they change.\n\n", *dialect)
	fmt.Fprint(c.stdout, v.ViewSQL(set.Views()))
	return exitOK
}

// viewer is the output type that keeps typed views, if typ is one.
func viewer(typ string) plugins.Viewer {
	spec, err := plugins.Default.Output(typ)
	if err != nil {
		return nil
	}
	v, _ := spec.New().(plugins.Viewer)
	return v
}
