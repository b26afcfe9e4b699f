package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/carpipe/carpipe/config"
	"github.com/carpipe/carpipe/engine"
	"github.com/carpipe/carpipe/plugins"
)

// ledger builds the engine for a command that reads or changes the
// ledger. Without inputs, only the outputs' variables need to be set.
func (c *cli) ledger(inputs, readOnly bool) (*engine.Engine, error) {
	cfg, err := c.loadConfig()
	if err != nil {
		return nil, err
	}
	if !inputs {
		cfg.Inputs = nil
	}
	e, err := c.openLedger(cfg, nil, readOnly)
	var ee *exitError
	if err != nil && !errors.As(err, &ee) {
		return nil, configError(c.notMigrated(err))
	}
	return e, err
}

// openLedger builds the engine of cfg with router; read-only, it opens
// only the database output that holds the ledger.
func (c *cli) openLedger(cfg *config.Config, router plugins.Router, readOnly bool) (*engine.Engine, error) {
	if readOnly {
		cfg.Outputs = ledgerEntries(cfg.Outputs)
	}
	if err := unset(cfg.Inputs, cfg.Outputs); err != nil {
		return nil, err
	}
	return engine.New(c.ctx, cfg, plugins.Default, router, engine.Options{Logger: c.log, Stdout: c.stdout, Secret: c.mask.add, ReadOnly: readOnly})
}

// ledgerEntries drops the outputs that cannot hold the ledger, which a
// read-only command neither opens nor needs the variables of.
func ledgerEntries(outs []config.Plugin) []config.Plugin {
	var keep []config.Plugin
	for _, o := range outs {
		if spec, err := plugins.Default.Output(o.Type); err == nil {
			if _, ok := spec.New().(plugins.Ledger); !ok {
				continue
			}
		}
		keep = append(keep, o) // an unknown type is left for New to report
	}
	return keep
}

// history opens the ledger's history for a read-only command: nothing is
// migrated, created or written.
func (c *cli) history() (plugins.History, func(), error) {
	e, err := c.ledger(false, true)
	if err != nil {
		return nil, nil, err
	}
	h, err := e.History(c.ctx)
	if err != nil {
		e.Close()
		return nil, nil, fatalError(c.notMigrated(err))
	}
	return h, func() { e.Close() }, nil
}

const readOnlyNote = `It only reads: it never migrates or writes, so a role that may only SELECT
will do; a database without carpipe's tables is an error (see migrate).`

func (c *cli) runsCmd() *cobra.Command {
	var n int
	var out *format
	cmd := c.command("runs", "Show the recent runs",
		`Show the newest runs of the pipeline's database, with every count: files
by outcome and records inserted, duplicate and rejected. `+readOnlyNote,
		`  carpipe runs -c config/pipeline.yaml
  carpipe runs -c config/pipeline.yaml -n 5 --format json`,
		nil, func(cmd *cobra.Command, args []string) error {
			h, done, err := c.history()
			if err != nil {
				return err
			}
			defer done()
			runs, err := h.Runs(c.ctx, n)
			if err != nil {
				return err
			}
			if out.value == "json" {
				return c.writeJSON(runsJSON(runs))
			}
			return writeRuns(c.stdout, runs)
		})
	c.configFlag(cmd)
	cmd.Flags().IntVarP(&n, "n", "n", 20, "how many of the newest runs to show (0: all)")
	out = formatFlag(cmd, "table")
	return cmd
}

func writeRuns(w io.Writer, runs []plugins.RunSummary) error {
	if len(runs) == 0 {
		_, err := fmt.Fprintln(w, "no runs yet")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tPIPELINE\tSTARTED\tDURATION\tPROCESSED\tFAILED\tSKIPPED\tUNMATCHED\tAMBIGUOUS\tLEFT\tHELD\tINSERTED\tDUPLICATE\tREJECTED\tSTATUS")
	for _, r := range runs {
		took := "-"
		if !r.Finished.IsZero() {
			took = duration(r.Finished.Sub(r.Started))
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t", r.ID, r.Pipeline, stamp(r.Started), took)
		for _, o := range plugins.Outcomes {
			fmt.Fprintf(tw, "%d\t", *r.Count(o))
		}
		fmt.Fprintf(tw, "%d\t%d\t%d\t%s\n", r.RecordsInserted, r.RecordsDuplicate, r.RecordsRejected, r.Status)
	}
	return tw.Flush()
}

type runJSON struct {
	ID               int64      `json:"id"`
	Pipeline         string     `json:"pipeline"`
	StartedAt        time.Time  `json:"started_at"`
	FinishedAt       *time.Time `json:"finished_at"`
	Status           string     `json:"status"`
	FilesProcessed   int64      `json:"files_processed"`
	FilesFailed      int64      `json:"files_failed"`
	FilesSkipped     int64      `json:"files_skipped"`
	FilesUnmatched   int64      `json:"files_unmatched"`
	FilesAmbiguous   int64      `json:"files_ambiguous"`
	FilesHeld        int64      `json:"files_held"`
	FilesLeft        int64      `json:"files_left"`
	RecordsInserted  int64      `json:"records_inserted"`
	RecordsDuplicate int64      `json:"records_duplicate"`
	RecordsRejected  int64      `json:"records_rejected"`
}

func runsJSON(runs []plugins.RunSummary) []runJSON {
	out := make([]runJSON, len(runs))
	for i, r := range runs {
		out[i] = runJSON{ID: r.ID, Pipeline: r.Pipeline, StartedAt: r.Started, Status: r.Status,
			FilesProcessed: r.FilesProcessed, FilesFailed: r.FilesFailed, FilesSkipped: r.FilesSkipped,
			FilesUnmatched: r.FilesUnmatched, FilesAmbiguous: r.FilesAmbiguous, FilesHeld: r.FilesHeld,
			FilesLeft: r.FilesLeft, RecordsInserted: r.RecordsInserted,
			RecordsDuplicate: r.RecordsDuplicate, RecordsRejected: r.RecordsRejected}
		if !r.Finished.IsZero() {
			out[i].FinishedAt = &r.Finished
		}
	}
	return out
}

func (c *cli) filesCmd() *cobra.Command {
	var q plugins.FileQuery
	var since string
	var out *format
	cmd := c.command("files", "Show the file ledger, with each failure's reason",
		`Show the file ledger, newest first: every file loaded or failed, with its
run, type, counts, where it is now and why it failed. `+readOnlyNote,
		`  carpipe files -c config/pipeline.yaml --status failed
  carpipe files -c config/pipeline.yaml --since 24h --type vehicles_status
  carpipe files -c config/pipeline.yaml --run 12 --format json`,
		nil, func(cmd *cobra.Command, args []string) error {
			if q.Status != "" && q.Status != plugins.StatusProcessed && q.Status != plugins.StatusFailed {
				return usageError("--status %q: want processed or failed", q.Status)
			}
			if since != "" {
				t, err := parseSince(since, time.Now())
				if err != nil {
					return &exitError{exitUsage, err}
				}
				q.Since = t
			}
			h, done, err := c.history()
			if err != nil {
				return err
			}
			defer done()
			files, err := h.Files(c.ctx, q)
			if err != nil {
				return err
			}
			if out.value == "json" {
				return c.writeJSON(filesJSON(files))
			}
			return writeFiles(c.stdout, files)
		})
	c.configFlag(cmd)
	f := cmd.Flags()
	f.StringVar(&q.Status, "status", "", "only files with this `status`: processed or failed")
	complete(cmd, "status", plugins.StatusProcessed, plugins.StatusFailed)
	f.Int64Var(&q.Run, "run", 0, "only files of run `ID`")
	f.StringVar(&q.FileType, "type", "", "only files of this file `TYPE`")
	f.StringVar(&q.Input, "input", "", "only files of this input `NAME`")
	f.StringVar(&since, "since", "", "only files processed since `T`: an RFC 3339 time, a date, or a duration such as 24h or 7d")
	f.IntVarP(&q.Limit, "n", "n", 100, "how many of the newest files to show (0: all)")
	out = formatFlag(cmd, "table")
	return cmd
}

func writeFiles(w io.Writer, files []plugins.FileEntry) error {
	if len(files) == 0 {
		_, err := fmt.Fprintln(w, "no files")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tRUN\tPROCESSED\tINPUT\tPATH\tTYPE\tSTATUS\tINS\tDUP\tREJ\tLOCATION\tREASON")
	for _, f := range files {
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\n", f.ID, f.Run, stamp(f.ProcessedAt),
			f.Input, f.Path, f.FileType, f.Status, f.RecordsInserted, f.RecordsDuplicate, f.RecordsRejected,
			dash(f.Location), f.Error)
	}
	return tw.Flush()
}

type fileJSON struct {
	ID               int64      `json:"id"`
	Run              int64      `json:"run_id"`
	Input            string     `json:"input"`
	Path             string     `json:"path"`
	FileType         string     `json:"file_type"`
	Size             int64      `json:"size"`
	SHA256           string     `json:"sha256"`
	Time             *time.Time `json:"file_time"`
	Status           string     `json:"status"`
	RecordsTotal     int64      `json:"records_total"`
	RecordsInserted  int64      `json:"records_inserted"`
	RecordsDuplicate int64      `json:"records_duplicate"`
	RecordsRejected  int64      `json:"records_rejected"`
	Error            string     `json:"error"`
	Location         string     `json:"location"`
	ProcessedAt      time.Time  `json:"processed_at"`
}

func filesJSON(files []plugins.FileEntry) []fileJSON {
	out := make([]fileJSON, len(files))
	for i, f := range files {
		out[i] = fileJSON(f)
	}
	return out
}

func (c *cli) rejectsCmd() *cobra.Command {
	var id int64
	var out *format
	cmd := c.command("rejects", "Show a file's rejected records and their errors",
		`Show the records of one file that its schema rejected and that
on_invalid_record: skip_record kept aside, with each error's JSON Pointer
and the record's text; for a file that failed whole, why. An ID the ledger
does not hold exits 1. `+readOnlyNote,
		`  carpipe files -c config/pipeline.yaml --status processed
  carpipe rejects -c config/pipeline.yaml --file 42
  carpipe rejects -c config/pipeline.yaml --file 42 --format json`,
		nil, func(cmd *cobra.Command, args []string) error {
			if id <= 0 {
				return usageError("rejects needs --file ID (see carpipe files)")
			}
			h, done, err := c.history()
			if err != nil {
				return err
			}
			defer done()
			file, err := h.File(c.ctx, id)
			if errors.Is(err, plugins.ErrNotFound) {
				return fatalError(fmt.Errorf("no file %d in the ledger (see carpipe files)", id))
			}
			if err != nil {
				return err
			}
			rejects, err := h.Rejects(c.ctx, id)
			if err != nil {
				return err
			}
			if out.value == "json" {
				return c.writeJSON(rejectsJSON(rejects))
			}
			return writeRejects(c.stdout, file, rejects)
		})
	c.configFlag(cmd)
	cmd.Flags().Int64Var(&id, "file", 0, "the file's `ID` in the ledger (see carpipe files)")
	out = formatFlag(cmd, "table")
	return cmd
}

func writeRejects(w io.Writer, f plugins.FileEntry, rejects []plugins.RejectEntry) error {
	fmt.Fprintf(w, "file %d %s/%s (%s, run %d, %s): %d rejected record(s)\n", f.ID, f.Input, f.Path, f.FileType, f.Run, f.Status, len(rejects))
	if len(rejects) == 0 {
		if f.Status == plugins.StatusFailed {
			_, err := fmt.Fprintf(w, "the whole file failed, so none of its records was kept: %s\n", f.Error)
			return err
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RECORD\tPOINTER\tERROR\tRECORD TEXT")
	for _, r := range rejects {
		for i, e := range r.Errors {
			text := ""
			if i == 0 {
				text = short(r.Payload, 80)
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", r.Index, dash(e.Pointer), e.Message, text)
		}
	}
	return tw.Flush()
}

type rejectJSON struct {
	ID      int64                `json:"id"`
	FileID  int64                `json:"file_id"`
	Index   int                  `json:"record_index"`
	Errors  []plugins.FieldError `json:"errors"`
	Payload string               `json:"payload"`
}

func rejectsJSON(rejects []plugins.RejectEntry) []rejectJSON {
	out := make([]rejectJSON, len(rejects))
	for i, r := range rejects {
		out[i] = rejectJSON(r)
	}
	return out
}

func (c *cli) reprocessCmd() *cobra.Command {
	var failed bool
	var since string
	var out *format
	cmd := c.command("reprocess ID... | --failed", "Put failed files back, for the next run to load",
		`Put failed files back where they were found, so that the next run loads
them: on_failure moved them away, and the ledger lets a failed file load
again. Name the files by their ledger ID (see carpipe files --status
failed), or give --failed for every failed file of this config's inputs.
A file that was loaded is refused. Exits 3 when some file was not put back.`,
		`  carpipe reprocess -c config/pipeline.yaml 17 18
  carpipe reprocess -c config/pipeline.yaml --failed --since 24h
  carpipe reprocess -c config/pipeline.yaml --failed --format json`,
		cobra.ArbitraryArgs, func(cmd *cobra.Command, args []string) error {
			q := engine.ReprocessQuery{Failed: failed}
			for _, a := range args {
				id, err := strconv.ParseInt(a, 10, 64)
				if err != nil || id <= 0 {
					return usageError("%q is not a file ID (see carpipe files --status failed)", a)
				}
				q.IDs = append(q.IDs, id)
			}
			switch {
			case len(q.IDs) == 0 && !failed:
				return usageError("name the files to reprocess by ID, or give --failed")
			case since != "" && !failed:
				return noEffect("--since", "without --failed")
			case since != "":
				t, err := parseSince(since, time.Now())
				if err != nil {
					return &exitError{exitUsage, err}
				}
				q.Since = t
			}
			e, err := c.ledger(true, false)
			if err != nil {
				return err
			}
			defer e.Close()
			done, err := e.Reprocess(c.ctx, q)
			if err != nil {
				return c.notMigrated(err)
			}
			back := 0
			for _, p := range done {
				if p.Err == nil {
					back++
				}
			}
			if out.value == "json" {
				err = c.writeJSON(putbacksJSON(done))
			} else {
				err = writePutbacks(c.stdout, done, back)
			}
			if err == nil && back < len(done) {
				return errPartial
			}
			return err
		})
	c.configFlag(cmd)
	cmd.Flags().BoolVar(&failed, "failed", false, "every failed file that on_failure moved away")
	cmd.Flags().StringVar(&since, "since", "", "with --failed: only files that failed since `T` (RFC 3339, a date, or a duration such as 24h)")
	out = formatFlag(cmd, "text")
	return cmd
}

func writePutbacks(w io.Writer, done []engine.Putback, back int) error {
	for _, p := range done {
		name := fmt.Sprintf("file %d", p.File.ID)
		if p.File.Input != "" {
			name += " " + p.File.Input + "/" + p.File.Path
		}
		switch {
		case p.Err != nil:
			fmt.Fprintf(w, "%s: not put back: %v\n", name, p.Err)
		case p.InPlace:
			fmt.Fprintf(w, "%s: already in place\n", name)
		default:
			note := ""
			if p.Note != "" {
				note = " (" + p.Note + ")"
			}
			fmt.Fprintf(w, "%s: put back from %s to %s%s\n", name, p.From, p.Path, note)
		}
	}
	var err error
	switch {
	case len(done) == 0:
		_, err = fmt.Fprintln(w, "no failed file to put back")
	case back > 0:
		_, err = fmt.Fprintf(w, "%d of %d file(s) ready: the next run loads them\n", back, len(done))
	}
	return err
}

type putbackJSON struct {
	ID     int64  `json:"id"`
	Input  string `json:"input,omitempty"`
	Path   string `json:"path,omitempty"`
	Result string `json:"result"` // put back, in place or not put back
	From   string `json:"from,omitempty"`
	To     string `json:"to,omitempty"`
	Note   string `json:"note,omitempty"`
	Error  string `json:"error,omitempty"`
}

func putbacksJSON(done []engine.Putback) []putbackJSON {
	out := make([]putbackJSON, len(done))
	for i, p := range done {
		j := putbackJSON{ID: p.File.ID, Input: p.File.Input, Path: p.File.Path, From: p.From, To: p.Path, Note: p.Note}
		switch {
		case p.Err != nil:
			j.Result, j.Error = "not put back", p.Err.Error()
		case p.InPlace:
			j.Result = "in place"
		default:
			j.Result = "put back"
		}
		out[i] = j
	}
	return out
}

// parseSince reads an RFC 3339 time, a date (local midnight), or a
// duration back from now such as 90m, 24h or 7d.
func parseSince(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation(time.DateOnly, s, time.Local); err == nil {
		return t, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n > 0 {
			return now.AddDate(0, 0, -n), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("--since %q: want an RFC 3339 time (2024-05-01T10:00:00Z), a date (2024-05-01) or a duration such as 24h or 7d", s)
}

func (c *cli) writeJSON(v any) error {
	enc := json.NewEncoder(c.stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// stamp shows a time in the local zone, to the second.
func stamp(t time.Time) string { return t.Local().Format(time.DateTime) }

// duration rounds to what a person reads: 13ms, 1.52s, 2m3s.
func duration(d time.Duration) string {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(10 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// short puts text on one line and cuts it to n characters.
func short(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
