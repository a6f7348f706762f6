-- Run searches filter on metric values (`metrics.acc > 0.9`): with this index a search starts
-- from the runs whose metric matches instead of probing every run of the experiments.
CREATE INDEX mlflow_latest_metrics_by_value ON mlflow_latest_metrics (key, value);
