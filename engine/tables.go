package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/carpipe/carpipe/plugins"
)

// BreakingError is a plan that run and migrate refuse; it matches
// plugins.ErrBreaking.
type BreakingError struct {
	Changes []plugins.Change // the breaking ones
}

func (e *BreakingError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%v: the database was left as it is, and nothing is loaded until the schemas and the tables agree:", plugins.ErrBreaking)
	for _, c := range e.Changes {
		fmt.Fprintf(&b, "\n  %s: %s", c.Table, c.Detail)
	}
	return b.String()
}

func (e *BreakingError) Unwrap() error { return plugins.ErrBreaking }

// planner is the ledger and the tables it keeps, when it keeps any.
func (e *Engine) planner() (plugins.Planner, []plugins.Table, bool) {
	src, ok := e.router.(plugins.TableSource)
	p, ok2 := e.ledger.(plugins.Planner)
	if !ok || !ok2 {
		return nil, nil, false
	}
	return p, src.Tables(), true
}

// tables creates the file types' tables and makes the additive changes; a
// breaking change leaves everything as it is and is a *BreakingError.
func (e *Engine) tables(ctx context.Context) error {
	p, ts, ok := e.planner()
	if !ok {
		return nil
	}
	plan, err := p.Apply(ctx, ts)
	if errors.Is(err, plugins.ErrBreaking) {
		return breaking(plan)
	}
	if err != nil {
		return err
	}
	for _, c := range plan.Changes {
		switch c.Kind {
		case plugins.ChangeCreate:
			e.log.Info("table created", "file_type", c.FileType, "table", c.Table)
		case plugins.ChangeAddColumn:
			e.log.Info("column added", "file_type", c.FileType, "table", c.Table, "column", c.Column)
		case plugins.ChangeSchema:
			e.log.Info("schema changed; table unchanged", "file_type", c.FileType, "table", c.Table)
		}
	}
	return nil
}

func breaking(plan plugins.Plan) error {
	be := &BreakingError{}
	for _, c := range plan.Changes {
		if c.Kind == plugins.ChangeBreaking {
			be.Changes = append(be.Changes, c)
		}
	}
	return be
}

// errNoPlan is Plan's error for a database output that keeps no tables of
// its own per file type.
var errNoPlan = errors.New("the database output does not keep a table per file type")

// Plan tells what run or migrate would change in the database's tables,
// changing nothing. A database without carpipe's tables is an error
// matching plugins.ErrNotMigrated.
func (e *Engine) Plan(ctx context.Context) (plugins.Plan, error) {
	if e.ledger == nil {
		return plugins.Plan{}, errors.New("no database output")
	}
	p, ts, ok := e.planner()
	if !ok {
		return plugins.Plan{}, errNoPlan
	}
	if r, ok := e.ledger.(plugins.Readier); ok {
		if err := r.Ready(ctx); err != nil {
			return plugins.Plan{}, err
		}
	}
	return p.Plan(ctx, ts)
}

// Verdict is what the schemas of today say of the rows one table holds.
type Verdict struct {
	FileType string     `json:"file_type"`
	Table    string     `json:"table"`
	Checked  int64      `json:"checked"`
	Rejected int64      `json:"rejected"`
	Rows     []Rejected `json:"rows"` // the first ones rejected, up to the limit
}

// Rejected is a stored record the schema would now reject.
type Rejected struct {
	FileID int64                `json:"file_id"`
	Index  int                  `json:"index"`
	Errors []plugins.FieldError `json:"errors"`
}

// AgainstData checks the stored records of every file type plan changes
// (a create aside: its table holds nothing yet) with check, which must give
// the verdict a run would give the record under today's schema; up to
// limit rejected records are kept per type. It writes nothing.
func (e *Engine) AgainstData(ctx context.Context, plan plugins.Plan, limit int, check func(fileType string, record []byte) []plugins.FieldError) ([]Verdict, error) {
	p, ts, ok := e.planner()
	if !ok {
		return nil, errNoPlan
	}
	changed := map[string]bool{}
	for _, c := range plan.Changes {
		if c.Kind != plugins.ChangeCreate {
			changed[c.FileType] = true
		}
	}
	var out []Verdict
	for _, t := range ts {
		if !changed[t.FileType] {
			continue
		}
		stored, ok := storedTable(plan, t)
		if !ok {
			return out, fmt.Errorf("file type %s: the plan changes its table but does not say how the database holds it", t.FileType)
		}
		v := Verdict{FileType: t.FileType, Table: stored.Name, Rows: []Rejected{}}
		err := p.Scan(ctx, stored, func(fileID int64, index int, record []byte) error {
			v.Checked++
			if errs := check(t.FileType, record); len(errs) > 0 {
				v.Rejected++
				if len(v.Rows) < limit {
					v.Rows = append(v.Rows, Rejected{FileID: fileID, Index: index, Errors: errs})
				}
			}
			return ctx.Err()
		})
		if err != nil {
			return out, fmt.Errorf("reading table %s: %w", stored.Name, err)
		}
		out = append(out, v)
	}
	return out, nil
}

// storedTable is t as the database holds it, if it does.
func storedTable(plan plugins.Plan, t plugins.Table) (plugins.Table, bool) {
	for _, s := range plan.Stored {
		if s.FileType == t.FileType {
			return s, true
		}
	}
	return plugins.Table{}, false
}
