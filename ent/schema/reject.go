package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/dialect"
	"entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// FieldError is one reason a record was rejected; it mirrors
// plugins.FieldError so the JSON stays the same.
type FieldError struct {
	Pointer string `json:"pointer"`
	Message string `json:"message"`
}

// Reject is an invalid record kept for inspection.
type Reject struct {
	ent.Schema
}

// Annotations of the Reject.
func (Reject) Annotations() []schema.Annotation {
	return []schema.Annotation{entsql.Annotation{Table: "rejects"}}
}

// Fields of the Reject.
func (Reject) Fields() []ent.Field {
	return []ent.Field{
		field.Int("file_id"),
		field.Int("record_index"),
		field.JSON("errors", []FieldError{}).SchemaType(map[string]string{
			dialect.Postgres: "jsonb",
		}),
		// The raw record text, as read.
		field.Text("payload"),
	}
}

// Edges of the Reject.
func (Reject) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("file", File.Type).Ref("rejects").Field("file_id").Unique().Required(),
	}
}

// Indexes of the Reject.
func (Reject) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("file_id").StorageKey("rejects_file_id"),
	}
}
