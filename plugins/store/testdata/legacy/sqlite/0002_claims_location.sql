-- Written by TestMigrations from ent/schema; never edit it once applied.
CREATE TABLE `new_files` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `input` text NOT NULL, `path` text NOT NULL, `file_type` text NOT NULL, `size` integer NOT NULL, `sha256` text NOT NULL, `file_time` datetime NULL, `status` text NOT NULL, `records_total` integer NOT NULL DEFAULT (0), `records_inserted` integer NOT NULL DEFAULT (0), `records_duplicate` integer NOT NULL DEFAULT (0), `records_rejected` integer NOT NULL DEFAULT (0), `error` text NULL DEFAULT (''), `location` text NULL DEFAULT (''), `processed_at` datetime NOT NULL, `run_id` integer NOT NULL, CONSTRAINT `files_runs_files` FOREIGN KEY (`run_id`) REFERENCES `runs` (`id`) ON DELETE NO ACTION);
INSERT INTO `new_files` (`id`, `input`, `path`, `file_type`, `size`, `sha256`, `file_time`, `status`, `records_total`, `records_inserted`, `records_duplicate`, `records_rejected`, `error`, `processed_at`, `run_id`) SELECT `id`, `input`, `path`, `file_type`, `size`, `sha256`, `file_time`, `status`, `records_total`, `records_inserted`, `records_duplicate`, `records_rejected`, `error`, `processed_at`, `run_id` FROM `files`;
DROP TABLE `files`;
ALTER TABLE `new_files` RENAME TO `files`;
CREATE UNIQUE INDEX `files_input_path_sha256` ON `files` (`input`, `path`, `sha256`);
CREATE INDEX `files_status` ON `files` (`status`);
CREATE INDEX `files_run_id` ON `files` (`run_id`);
CREATE TABLE `claims` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `input` text NOT NULL, `path` text NOT NULL, `holder` text NOT NULL, `expires_at` datetime NOT NULL);
CREATE UNIQUE INDEX `claims_input_path` ON `claims` (`input`, `path`);
