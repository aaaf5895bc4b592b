-- Per-destination retry overrides (Outrider extension to Outpost's destination).
ALTER TABLE destinations ADD COLUMN retry_schedule TEXT;
ALTER TABLE destinations ADD COLUMN retry_max_attempts BIGINT;
