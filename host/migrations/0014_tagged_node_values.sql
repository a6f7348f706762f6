-- Node inputs and outputs are stored with each value's kind outside it ({"json": ...} or
-- {"bytes": "<base64>"} per port), so JSON shaped like the API's bytes marker stays JSON after
-- a restart. Rows written before keep encoding 1 (plain JSON, bytes as {"$bytes": "<base64>"})
-- and are read as they always were.
ALTER TABLE run_nodes ADD COLUMN value_format BIGINT NOT NULL DEFAULT 1;
