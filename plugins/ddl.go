package plugins

// DDLWriter is implemented by a database output that can write the SQL of
// the typed tables without a connection, so that `carpipe schemas --sql`
// can print it for a DBA to review.
type DDLWriter interface {
	// TableSQL is the SQL that creates ts and their unique indexes on an
	// empty database, in the output's dialect.
	TableSQL(ts []Table) (string, error)
}
