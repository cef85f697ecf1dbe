-- Push delivery of signed reports: the deliveries table becomes a durable queue. A row is one
-- delivery of one report version on one channel (dicom: C-STORE of the report object to the
-- clinic's PACS; hl7: ORU^R01 to its HIS; pull: the clinic fetched it). Push rows are queued
-- pending when the report is signed and worked by any node: a node leases a due row (on
-- PostgreSQL with FOR UPDATE SKIP LOCKED, so nodes never take the same row), tries it, and marks
-- it delivered, or pending again with the next attempt backed off, or failed for good.
ALTER TABLE deliveries ADD COLUMN target TEXT NOT NULL DEFAULT '';
ALTER TABLE deliveries ADD COLUMN next_attempt_at BIGINT;
ALTER TABLE deliveries ADD COLUMN lease_until BIGINT;
ALTER TABLE deliveries ADD COLUMN leased_by TEXT NOT NULL DEFAULT '';
ALTER TABLE deliveries ADD COLUMN requested_by TEXT NOT NULL DEFAULT '';
ALTER TABLE deliveries ADD COLUMN last_attempt_at BIGINT;
-- A report can be sent again on a push channel; it is fetched once (pull).
DROP INDEX deliveries_report_channel;
CREATE UNIQUE INDEX deliveries_pull ON deliveries (report_id) WHERE channel = 'pull';
CREATE INDEX deliveries_report ON deliveries (report_id, channel);
CREATE INDEX deliveries_due ON deliveries (status, next_attempt_at);

-- The report as a DICOM Encapsulated PDF in the study: its SOP Instance UID and stored object.
ALTER TABLE reports ADD COLUMN document_uid TEXT NOT NULL DEFAULT '';
ALTER TABLE reports ADD COLUMN document_key TEXT NOT NULL DEFAULT '';
-- A draft being signed, until then: a second signature of it is refused before it makes anything.
ALTER TABLE reports ADD COLUMN signing_until BIGINT;
