-- Create "claims" table
CREATE TABLE `claims` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `input` text NOT NULL, `path` text NOT NULL, `path_key` text NOT NULL, `holder` text NOT NULL, `expires_at` datetime NOT NULL);
-- Create index "claims_input_path_key" to table: "claims"
CREATE UNIQUE INDEX `claims_input_path_key` ON `claims` (`input`, `path_key`);
-- Create "files" table
CREATE TABLE `files` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `input` text NOT NULL, `path` text NOT NULL, `path_key` text NOT NULL, `file_type` text NOT NULL, `size` integer NOT NULL, `sha256` text NOT NULL, `file_time` datetime NULL, `status` text NOT NULL, `records_total` integer NOT NULL DEFAULT (0), `records_inserted` integer NOT NULL DEFAULT (0), `records_duplicate` integer NOT NULL DEFAULT (0), `records_rejected` integer NOT NULL DEFAULT (0), `error` text NULL DEFAULT (''), `location` text NULL DEFAULT (''), `processed_at` datetime NOT NULL, `run_id` integer NOT NULL, CONSTRAINT `files_runs_files` FOREIGN KEY (`run_id`) REFERENCES `runs` (`id`) ON DELETE NO ACTION);
-- Create index "files_input_path_key_sha256" to table: "files"
CREATE UNIQUE INDEX `files_input_path_key_sha256` ON `files` (`input`, `path_key`, `sha256`);
-- Create index "files_status" to table: "files"
CREATE INDEX `files_status` ON `files` (`status`);
-- Create index "files_run_id" to table: "files"
CREATE INDEX `files_run_id` ON `files` (`run_id`);
-- Create "file_types" table
CREATE TABLE `file_types` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `name` text NOT NULL, `table_name` text NOT NULL, `digest` text NOT NULL, `columns` json NOT NULL, `key` json NULL, `has_time` bool NOT NULL DEFAULT (false), `version` integer NOT NULL DEFAULT (1), `updated_at` datetime NOT NULL);
-- Create index "file_types_name_key" to table: "file_types"
CREATE UNIQUE INDEX `file_types_name_key` ON `file_types` (`name`);
-- Create index "file_types_table_name_key" to table: "file_types"
CREATE UNIQUE INDEX `file_types_table_name_key` ON `file_types` (`table_name`);
-- Create "rejects" table
CREATE TABLE `rejects` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `record_index` integer NOT NULL, `errors` json NOT NULL, `payload` text NOT NULL, `file_id` integer NOT NULL, CONSTRAINT `rejects_files_rejects` FOREIGN KEY (`file_id`) REFERENCES `files` (`id`) ON DELETE NO ACTION);
-- Create index "rejects_file_id" to table: "rejects"
CREATE INDEX `rejects_file_id` ON `rejects` (`file_id`);
-- Create "runs" table
CREATE TABLE `runs` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `pipeline` text NOT NULL, `started_at` datetime NOT NULL, `finished_at` datetime NULL, `status` text NOT NULL DEFAULT ('running'), `holder` text NULL DEFAULT (''), `files_processed` integer NOT NULL DEFAULT (0), `files_failed` integer NOT NULL DEFAULT (0), `files_skipped` integer NOT NULL DEFAULT (0), `files_unmatched` integer NOT NULL DEFAULT (0), `files_ambiguous` integer NOT NULL DEFAULT (0), `files_held` integer NOT NULL DEFAULT (0), `files_left` integer NOT NULL DEFAULT (0), `records_inserted` integer NOT NULL DEFAULT (0), `records_duplicate` integer NOT NULL DEFAULT (0), `records_rejected` integer NOT NULL DEFAULT (0));
-- Create index "runs_running" to table: "runs"
CREATE INDEX `runs_running` ON `runs` (`status`) WHERE status = 'running';
