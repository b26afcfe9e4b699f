package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// Claim is a lease on a file taken before it is read, so that processes
// sharing an input do not read the same file twice.
type Claim struct {
	ent.Schema
}

// Annotations of the Claim.
func (Claim) Annotations() []schema.Annotation {
	return []schema.Annotation{entsql.Annotation{Table: "claims"}}
}

// Fields of the Claim.
func (Claim) Fields() []ent.Field {
	return []ent.Field{
		field.String("input"),
		field.Text("path"),
		// The path as the unique index holds it: PathKey in plugins/store,
		// since a btree entry cannot hold an arbitrarily long path.
		field.Text("path_key"),
		field.String("holder"), // host/pid/random of the process
		field.Time("expires_at"),
	}
}

// Indexes of the Claim.
func (Claim) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("input", "path_key").Unique().StorageKey("claims_input_path_key"),
	}
}
