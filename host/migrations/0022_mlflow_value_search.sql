-- Run searches filter on param and tag values (`params.group = 'g3'`): with these indexes the
-- matching runs are found by value instead of by reading every param or tag of every run.
CREATE INDEX mlflow_params_by_value ON mlflow_params (key, value);
CREATE INDEX mlflow_tags_by_value ON mlflow_tags (key, value);
