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

// Run is one execution of a pipeline.
type Run struct {
	ent.Schema
}

// Annotations of the Run.
func (Run) Annotations() []schema.Annotation {
	return []schema.Annotation{entsql.Annotation{Table: "runs"}}
}

// Fields of the Run.
func (Run) Fields() []ent.Field {
	return []ent.Field{
		field.String("pipeline"),
		field.Time("started_at").Default(time.Now).Immutable(),
		field.Time("finished_at").Optional().Nillable(),
		field.String("status").Default("running").Validate(oneOf("ok", "partial", "failed", "running", "aborted")),
		// Who runs it (host/pid/random, as in claims): a later run closes a
		// dead holder's run as aborted.
		field.String("holder").Optional().Default(""),
		field.Int64("files_processed").Default(0),
		field.Int64("files_failed").Default(0),
		field.Int64("files_skipped").Default(0),
		field.Int64("files_unmatched").Default(0),
		field.Int64("files_ambiguous").Default(0),
		field.Int64("files_held").Default(0),
		field.Int64("files_left").Default(0),
		field.Int64("records_inserted").Default(0),
		field.Int64("records_duplicate").Default(0),
		field.Int64("records_rejected").Default(0),
	}
}

// Edges of the Run.
func (Run) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("files", File.Type),
	}
}

// Indexes of the Run.
func (Run) Indexes() []ent.Index {
	return []ent.Index{
		// The sweep looks for running runs of dead holders; finished runs,
		// nearly all of them, stay out of the index.
		index.Fields("status").Annotations(entsql.IndexWhere("status = 'running'")).StorageKey("runs_running"),
	}
}
