package schema

import (
	"time"

	"entgo.io/ent"
	"entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
)

// FileType records how each file type is stored: the table carpipe made
// from its schema, so that the next schema can be planned against it.
type FileType struct {
	ent.Schema
}

// Annotations of the FileType.
func (FileType) Annotations() []schema.Annotation {
	return []schema.Annotation{entsql.Annotation{Table: "file_types"}}
}

// Fields of the FileType.
func (FileType) Fields() []ent.Field {
	return []ent.Field{
		field.String("name").Unique(),
		field.String("table_name").Unique(),
		// The schema file's digest, "sha256:" + hex.
		field.String("digest"),
		// The columns as the table holds them: name, property and type.
		field.JSON("columns", []TableColumn{}),
		// The key's column names, in the key's order; empty: _key.
		field.Strings("key").Optional(),
		field.Bool("has_time").Default(false),
		// Grows by one with every applied change.
		field.Int("version").Default(1),
		field.Time("updated_at").Default(time.Now).UpdateDefault(time.Now),
	}
}

// TableColumn is one column of a file type's table.
type TableColumn struct {
	Name     string `json:"name"`
	Property string `json:"property"`
	Type     string `json:"type"`
}
