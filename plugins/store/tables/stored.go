package tables

import (
	"context"
	"database/sql"
	"fmt"
	"slices"

	"github.com/carpipe/carpipe/ent"
	entschema "github.com/carpipe/carpipe/ent/schema"
	"github.com/carpipe/carpipe/plugins"
)

// Stored reads the file_types rows: each file type's table as carpipe
// created and changed it, by file type. Its columns are every column the
// table got, also those of properties a later schema dropped.
func Stored(ctx context.Context, db *sql.DB, d string) (map[string]plugins.Table, error) {
	x, err := begin(ctx, db, d, false)
	if err != nil {
		return nil, err
	}
	defer x.rollback()
	rows, err := x.client().FileType.Query().All(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading file_types: %w", err)
	}
	m := make(map[string]plugins.Table, len(rows))
	for _, r := range rows {
		t, err := fromRow(r)
		if err != nil {
			return nil, err
		}
		m[t.FileType] = t
	}
	return m, nil
}

// fromRow is the Table a file_types row records.
func fromRow(r *ent.FileType) (plugins.Table, error) {
	t := plugins.Table{Name: r.TableName, FileType: r.Name, HasTime: r.HasTime, Digest: r.Digest}
	for _, c := range r.Columns {
		t.Columns = append(t.Columns, plugins.Column(c))
	}
	for _, k := range r.Key {
		i := slices.IndexFunc(t.Columns, func(c plugins.Column) bool { return c.Name == k })
		if i < 0 {
			return t, fmt.Errorf("file_types row of %s: key column %s is not among its columns", r.Name, k)
		}
		t.Key = append(t.Key, i)
	}
	return t, nil
}

func rowColumns(t plugins.Table) []entschema.TableColumn {
	cs := make([]entschema.TableColumn, len(t.Columns))
	for i, c := range t.Columns {
		cs[i] = entschema.TableColumn(c)
	}
	return cs
}

// write brings the file_types row of t.FileType to t.
func write(ctx context.Context, c *ent.Client, old *ent.FileType, t plugins.Table) error {
	var err error
	if old == nil {
		err = c.FileType.Create().SetName(t.FileType).SetTableName(t.Name).SetDigest(t.Digest).
			SetColumns(rowColumns(t)).SetKey(keyNames(t)).SetHasTime(t.HasTime).SetVersion(1).Exec(ctx)
	} else {
		err = c.FileType.UpdateOne(old).SetDigest(t.Digest).SetColumns(rowColumns(t)).
			SetHasTime(t.HasTime).AddVersion(1).Exec(ctx)
	}
	if err != nil {
		return fmt.Errorf("recording file type %s in file_types: %w", t.FileType, err)
	}
	return nil
}
