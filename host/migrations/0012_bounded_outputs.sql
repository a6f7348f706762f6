-- Executions whose outputs went past [notebooks] max_output_bytes: the oldest were dropped and
-- a note says so in the cell.
ALTER TABLE notebook_executions ADD COLUMN truncated BIGINT NOT NULL DEFAULT 0;
