-- Written by TestMigrations from ent/schema, then given path_key: SQLite has
-- no digest function, and its indexes hold long keys, so a path over 512
-- bytes keeps itself as its key here; such a file is taken for new once
-- (its records are duplicates then). Never edit it once applied.
CREATE TABLE `new_runs` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `pipeline` text NOT NULL, `started_at` datetime NOT NULL, `finished_at` datetime NULL, `status` text NOT NULL DEFAULT ('running'), `holder` text NULL DEFAULT (''), `files_processed` integer NOT NULL DEFAULT (0), `files_failed` integer NOT NULL DEFAULT (0), `files_skipped` integer NOT NULL DEFAULT (0), `files_unmatched` integer NOT NULL DEFAULT (0), `files_ambiguous` integer NOT NULL DEFAULT (0), `files_held` integer NOT NULL DEFAULT (0), `files_left` integer NOT NULL DEFAULT (0), `records_inserted` integer NOT NULL DEFAULT (0), `records_duplicate` integer NOT NULL DEFAULT (0), `records_rejected` integer NOT NULL DEFAULT (0));
INSERT INTO `new_runs` (`id`, `pipeline`, `started_at`, `finished_at`, `status`, `files_processed`, `files_failed`, `files_skipped`, `files_unmatched`, `records_inserted`, `records_duplicate`, `records_rejected`) SELECT `id`, `pipeline`, `started_at`, `finished_at`, `status`, `files_processed`, `files_failed`, `files_skipped`, `files_unmatched`, `records_inserted`, `records_duplicate`, `records_rejected` FROM `runs`;
DROP TABLE `runs`;
ALTER TABLE `new_runs` RENAME TO `runs`;
CREATE TABLE `new_files` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `input` text NOT NULL, `path` text NOT NULL, `path_key` text NOT NULL, `file_type` text NOT NULL, `size` integer NOT NULL, `sha256` text NOT NULL, `file_time` datetime NULL, `status` text NOT NULL, `records_total` integer NOT NULL DEFAULT (0), `records_inserted` integer NOT NULL DEFAULT (0), `records_duplicate` integer NOT NULL DEFAULT (0), `records_rejected` integer NOT NULL DEFAULT (0), `error` text NULL DEFAULT (''), `location` text NULL DEFAULT (''), `processed_at` datetime NOT NULL, `run_id` integer NOT NULL, CONSTRAINT `files_runs_files` FOREIGN KEY (`run_id`) REFERENCES `runs` (`id`) ON DELETE NO ACTION);
INSERT INTO `new_files` (`id`, `input`, `path`, `path_key`, `file_type`, `size`, `sha256`, `file_time`, `status`, `records_total`, `records_inserted`, `records_duplicate`, `records_rejected`, `error`, `location`, `processed_at`, `run_id`) SELECT `id`, `input`, `path`, `path`, `file_type`, `size`, `sha256`, `file_time`, `status`, `records_total`, `records_inserted`, `records_duplicate`, `records_rejected`, `error`, `location`, `processed_at`, `run_id` FROM `files`;
DROP TABLE `files`;
ALTER TABLE `new_files` RENAME TO `files`;
CREATE UNIQUE INDEX `files_input_path_key_sha256` ON `files` (`input`, `path_key`, `sha256`);
CREATE INDEX `files_status` ON `files` (`status`);
CREATE INDEX `files_run_id` ON `files` (`run_id`);
CREATE TABLE `new_claims` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `input` text NOT NULL, `path` text NOT NULL, `path_key` text NOT NULL, `holder` text NOT NULL, `expires_at` datetime NOT NULL);
INSERT INTO `new_claims` (`id`, `input`, `path`, `path_key`, `holder`, `expires_at`) SELECT `id`, `input`, `path`, `path`, `holder`, `expires_at` FROM `claims`;
DROP TABLE `claims`;
ALTER TABLE `new_claims` RENAME TO `claims`;
CREATE UNIQUE INDEX `claims_input_path_key` ON `claims` (`input`, `path_key`);
