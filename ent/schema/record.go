package schema

import (
	"time"

	"entgo.io/ent"
	"entgo.io/ent/dialect"
	"entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// Record is one stored record.
type Record struct {
	ent.Schema
}

// Annotations of the Record.
func (Record) Annotations() []schema.Annotation {
	return []schema.Annotation{entsql.Annotation{Table: "records"}}
}

// Fields of the Record.
func (Record) Fields() []ent.Field {
	return []ent.Field{
		field.String("file_type").Immutable(),
		// The canonical key as readable text.
		field.Text("record_key").Immutable(),
		field.Time("event_time").Optional().Nillable(),
		field.Text("payload").SchemaType(map[string]string{
			dialect.Postgres: "jsonb",
			dialect.SQLite:   "text",
		}),
		field.Int("file_id"),
		// The DB default lets a raw INSERT ... SELECT omit the column.
		field.Time("created_at").Default(time.Now).Immutable().
			Annotations(entsql.Default("CURRENT_TIMESTAMP")),
	}
}

// Edges of the Record.
func (Record) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("file", File.Type).Ref("records").Field("file_id").Unique().Required(),
	}
}

// Indexes of the Record.
func (Record) Indexes() []ent.Index {
	return []ent.Index{
		// The database, not the loader, de-duplicates records.
		index.Fields("file_type", "record_key").Unique().StorageKey("records_file_type_record_key"),
		index.Fields("file_type", "event_time").StorageKey("records_file_type_event_time"),
		index.Fields("file_id").StorageKey("records_file_id"),
	}
}
