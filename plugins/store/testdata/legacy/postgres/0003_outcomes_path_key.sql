-- Written by TestMigrations from ent/schema, then given the backfill of
-- path_key (store.PathKey: the path itself up to 512 bytes, else its
-- digest); never edit it once applied.
DROP INDEX "claims_input_path";
ALTER TABLE "claims" ADD COLUMN "path_key" text;
UPDATE "claims" SET "path_key" = CASE WHEN octet_length("path") <= 512 THEN "path" ELSE 'sha256:' || encode(sha256(convert_to("path", 'UTF8')), 'hex') END;
ALTER TABLE "claims" ALTER COLUMN "path_key" SET NOT NULL;
CREATE UNIQUE INDEX "claims_input_path_key" ON "claims" ("input", "path_key");
DROP INDEX "files_input_path_sha256";
ALTER TABLE "files" ADD COLUMN "path_key" text;
UPDATE "files" SET "path_key" = CASE WHEN octet_length("path") <= 512 THEN "path" ELSE 'sha256:' || encode(sha256(convert_to("path", 'UTF8')), 'hex') END;
ALTER TABLE "files" ALTER COLUMN "path_key" SET NOT NULL;
CREATE UNIQUE INDEX "files_input_path_key_sha256" ON "files" ("input", "path_key", "sha256");
ALTER TABLE "runs" ADD COLUMN "holder" character varying NULL DEFAULT '', ADD COLUMN "files_ambiguous" bigint NOT NULL DEFAULT 0, ADD COLUMN "files_held" bigint NOT NULL DEFAULT 0, ADD COLUMN "files_left" bigint NOT NULL DEFAULT 0;
