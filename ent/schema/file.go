package schema

import (
	"time"

	"entgo.io/ent"
	"entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// File is the ledger: one row per file an output has seen.
type File struct {
	ent.Schema
}

// Annotations of the File.
func (File) Annotations() []schema.Annotation {
	return []schema.Annotation{entsql.Annotation{Table: "files"}}
}

// Fields of the File.
func (File) Fields() []ent.Field {
	return []ent.Field{
		field.Int("run_id"),
		field.String("input"),
		field.Text("path"),
		// The path as the unique index holds it: PathKey in plugins/store,
		// since a btree entry cannot hold an arbitrarily long path.
		field.Text("path_key"),
		field.String("file_type"),
		field.Int64("size"),
		field.String("sha256"),
		field.Time("file_time").Optional().Nillable(),
		field.String("status").Validate(oneOf("processed", "failed")),
		field.Int64("records_total").Default(0),
		field.Int64("records_inserted").Default(0),
		field.Int64("records_duplicate").Default(0),
		field.Int64("records_rejected").Default(0),
		field.Text("error").Optional().Default(""),
		// Where the file is after its on_success/on_failure action, relative
		// to the input's root; "" once deleted.
		field.Text("location").Optional().Default(""),
		field.Time("processed_at").Default(time.Now),
	}
}

// Edges of the File.
func (File) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("run", Run.Type).Ref("files").Field("run_id").Unique().Required(),
		edge.To("rejects", Reject.Type),
	}
}

// Indexes of the File.
func (File) Indexes() []ent.Index {
	return []ent.Index{
		// The same content at the same place is loaded once.
		index.Fields("input", "path_key", "sha256").Unique().StorageKey("files_input_path_key_sha256"),
		index.Fields("status").StorageKey("files_status"),
		index.Fields("run_id").StorageKey("files_run_id"),
	}
}
