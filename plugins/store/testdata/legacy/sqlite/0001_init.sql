-- Written by TestMigrations from ent/schema; never edit it once applied.
CREATE TABLE `files` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `input` text NOT NULL, `path` text NOT NULL, `file_type` text NOT NULL, `size` integer NOT NULL, `sha256` text NOT NULL, `file_time` datetime NULL, `status` text NOT NULL, `records_total` integer NOT NULL DEFAULT (0), `records_inserted` integer NOT NULL DEFAULT (0), `records_duplicate` integer NOT NULL DEFAULT (0), `records_rejected` integer NOT NULL DEFAULT (0), `error` text NULL DEFAULT (''), `processed_at` datetime NOT NULL, `run_id` integer NOT NULL, CONSTRAINT `files_runs_files` FOREIGN KEY (`run_id`) REFERENCES `runs` (`id`) ON DELETE NO ACTION);
CREATE UNIQUE INDEX `files_input_path_sha256` ON `files` (`input`, `path`, `sha256`);
CREATE INDEX `files_status` ON `files` (`status`);
CREATE INDEX `files_run_id` ON `files` (`run_id`);
CREATE TABLE `records` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `file_type` text NOT NULL, `record_key` text NOT NULL, `event_time` datetime NULL, `payload` text NOT NULL, `created_at` datetime NOT NULL DEFAULT (CURRENT_TIMESTAMP), `file_id` integer NOT NULL, CONSTRAINT `records_files_records` FOREIGN KEY (`file_id`) REFERENCES `files` (`id`) ON DELETE NO ACTION);
CREATE UNIQUE INDEX `records_file_type_record_key` ON `records` (`file_type`, `record_key`);
CREATE INDEX `records_file_type_event_time` ON `records` (`file_type`, `event_time`);
CREATE INDEX `records_file_id` ON `records` (`file_id`);
CREATE TABLE `rejects` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `record_index` integer NOT NULL, `errors` json NOT NULL, `payload` text NOT NULL, `file_id` integer NOT NULL, CONSTRAINT `rejects_files_rejects` FOREIGN KEY (`file_id`) REFERENCES `files` (`id`) ON DELETE NO ACTION);
CREATE INDEX `rejects_file_id` ON `rejects` (`file_id`);
CREATE TABLE `runs` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `pipeline` text NOT NULL, `started_at` datetime NOT NULL, `finished_at` datetime NULL, `status` text NOT NULL DEFAULT ('running'), `files_processed` integer NOT NULL DEFAULT (0), `files_failed` integer NOT NULL DEFAULT (0), `files_skipped` integer NOT NULL DEFAULT (0), `files_unmatched` integer NOT NULL DEFAULT (0), `records_inserted` integer NOT NULL DEFAULT (0), `records_duplicate` integer NOT NULL DEFAULT (0), `records_rejected` integer NOT NULL DEFAULT (0));
