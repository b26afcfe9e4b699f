package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"

	"github.com/carpipe/carpipe/ent"
	"github.com/carpipe/carpipe/ent/file"
	"github.com/carpipe/carpipe/plugins"
)

// Store is the ledger and the records in one SQL database, behind Ent.
type Store struct {
	DB      *sql.DB
	Dialect string
	// Loader is the dialect's way of moving records into a type's table.
	Loader NewLoader
	// Fatal tells a lost database from a bad file.
	Fatal func(error) bool
	// Retry tells a conflict between writers (deadlock, serialization
	// failure), after which the file's transaction may be tried again.
	Retry func(error) bool
	// Serial makes file transactions take turns, for SQLite's single
	// writer: waiting in Go beats SQLite's busy-retry sleeps.
	Serial bool
	Log    *slog.Logger
	// Holders is, on SQLite, the folder of the holders' lock files (see
	// Hold); empty, a lease lasts until it expires.
	Holders string

	client *ent.Client
	holds  holds // Postgres locks held: holders.go
	write  sync.Mutex
	moves  moves // locations not yet written: history.go

	tables tableSet // the file types' tables: plan.go
}

var _ plugins.Ledger = (*Store)(nil)

// Open prepares the Ent client; the caller has opened DB.
func (s *Store) Open() {
	s.client = ent.NewClient(ent.Driver(entsql.OpenDB(s.Dialect, s.DB)))
}

// Client is the Ent client.
func (s *Store) Client() *ent.Client { return s.client }

// Close closes the database.
func (s *Store) Close() error {
	if s.DB == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.flushMoves(ctx)
	return s.DB.Close()
}

func (s *Store) wrap(err error) error {
	switch {
	case err == nil:
	case s.Fatal(err):
		return plugins.Fatal(err)
	case s.Retry != nil && s.Retry(err):
		return plugins.Retry(err)
	}
	return err
}

// Migrate applies the embedded migrations.
func (s *Store) Migrate(ctx context.Context) error {
	n, v, err := Migrate(ctx, s.DB, s.Dialect)
	if err != nil {
		return plugins.Fatal(fmt.Errorf("migrating the database: %w", err))
	}
	if n > 0 {
		s.Log.Info("database migrated", "applied", n, "revision", v)
	}
	return nil
}

// Ready tells whether the database holds every migration this carpipe
// has, reading only: commands that only read must not migrate.
func (s *Store) Ready(ctx context.Context) error {
	msg, err := unmigrated(ctx, s.DB, s.Dialect)
	switch {
	case err != nil:
		return s.wrap(err)
	case msg != "":
		return plugins.NotMigrated(msg)
	}
	return nil
}

// StartRun records a new run of holder.
func (s *Store) StartRun(ctx context.Context, pipeline, holder string) (int64, error) {
	r, err := s.client.Run.Create().SetPipeline(pipeline).SetStartedAt(time.Now()).SetStatus("running").SetHolder(holder).Save(ctx)
	if err != nil {
		return 0, plugins.Fatal(fmt.Errorf("recording the run: %w", err))
	}
	return int64(r.ID), nil
}

// FinishRun records what a run did.
func (s *Store) FinishRun(ctx context.Context, r plugins.RunSummary) error {
	s.flushMoves(ctx)
	err := s.client.Run.UpdateOneID(int(r.ID)).
		SetFinishedAt(r.Finished).SetStatus(r.Status).
		SetFilesProcessed(r.FilesProcessed).SetFilesFailed(r.FilesFailed).
		SetFilesSkipped(r.FilesSkipped).SetFilesUnmatched(r.FilesUnmatched).
		SetFilesAmbiguous(r.FilesAmbiguous).SetFilesHeld(r.FilesHeld).SetFilesLeft(r.FilesLeft).
		SetRecordsInserted(r.RecordsInserted).SetRecordsDuplicate(r.RecordsDuplicate).
		SetRecordsRejected(r.RecordsRejected).Exec(ctx)
	if err != nil {
		return plugins.Fatal(fmt.Errorf("recording the run: %w", err))
	}
	return nil
}

// Lookup returns a file's ledger status, "" when it has none.
func (s *Store) Lookup(ctx context.Context, input, path, sum string) (string, error) {
	f, err := s.client.File.Query().Where(file.Input(input), file.PathKey(PathKey(path)), file.Sha256(sum)).Only(ctx)
	if ent.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", s.wrap(fmt.Errorf("reading the ledger: %w", err))
	}
	return f.Status, nil
}

// Fail records a failed file with its reason, and returns its ledger row.
func (s *Store) Fail(ctx context.Context, f plugins.FileInfo, reason string) (int64, error) {
	if s.Serial {
		s.write.Lock()
		defer s.write.Unlock()
	}
	var id int
	err := s.inTx(ctx, func(c *ent.Client) error {
		old, err := c.File.Query().Where(file.Input(f.Input), file.PathKey(PathKey(f.Path)), file.Sha256(f.SHA256)).Only(ctx)
		switch {
		case ent.IsNotFound(err):
			row, err := c.File.Create().SetRunID(int(f.Run)).SetInput(f.Input).SetPath(PathText(f.Path)).SetPathKey(PathKey(f.Path)).
				SetFileType(f.FileType).SetSize(f.Size).SetSha256(f.SHA256).SetNillableFileTime(f.Time).
				SetStatus(plugins.StatusFailed).SetError(reason).SetLocation(PathText(f.Path)).SetProcessedAt(time.Now()).Save(ctx)
			if err == nil {
				id = row.ID
			}
			return err
		case err != nil:
			return err
		}
		id = old.ID
		if old.Status == plugins.StatusProcessed {
			return nil // a concurrent run loaded it
		}
		return old.Update().SetRunID(int(f.Run)).SetFileType(f.FileType).SetError(reason).
			SetLocation(PathText(f.Path)).SetProcessedAt(time.Now()).Exec(ctx)
	})
	if err != nil {
		return 0, s.wrap(fmt.Errorf("recording a failed file: %w", err))
	}
	return int64(id), nil
}

func (s *Store) inTx(ctx context.Context, fn func(*ent.Client) error) error {
	tx, err := s.DB.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(s.txClient(tx)); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

func (s *Store) txClient(tx *sql.Tx) *ent.Client {
	return ent.NewClient(ent.Driver(inTx{entsql.NewDriver(s.Dialect, entsql.Conn{ExecQuerier: tx})}))
}

// inTx runs Ent inside a transaction the store owns, which the bulk
// loaders share: Ent's own nested transactions become no-ops.
type inTx struct{ d *entsql.Driver }

func (t inTx) Exec(ctx context.Context, q string, args, v any) error {
	return t.d.Exec(ctx, q, args, v)
}
func (t inTx) Query(ctx context.Context, q string, args, v any) error {
	return t.d.Query(ctx, q, args, v)
}
func (t inTx) Tx(context.Context) (dialect.Tx, error) { return dialect.NopTx(t), nil }
func (t inTx) Close() error                           { return nil }
func (t inTx) Dialect() string                        { return t.d.Dialect() }

// maxPathKey is the longest path the unique indexes hold as it is: a
// PostgreSQL btree entry must fit a third of a page.
const maxPathKey = 512

// PathKey is how the unique indexes hold a path: itself when short and
// valid UTF-8, else its digest; the path column keeps the text.
func PathKey(p string) string {
	if len(p) <= maxPathKey && utf8.ValidString(p) {
		return p
	}
	sum := sha256.Sum256([]byte(p))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// PathText is a path as a text column can hold it: a name that is not
// valid UTF-8 (any byte string is a POSIX name) shows its stray bytes as
// \xNN. Only PathKey identifies the file.
func PathText(p string) string {
	if utf8.ValidString(p) {
		return p
	}
	var b strings.Builder
	for len(p) > 0 {
		r, n := utf8.DecodeRuneInString(p)
		if r == utf8.RuneError && n == 1 {
			fmt.Fprintf(&b, "\\x%02x", p[0])
		} else {
			b.WriteString(p[:n])
		}
		p = p[n:]
	}
	return b.String()
}
