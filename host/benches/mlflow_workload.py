"""The MLflow benchmark's client workload (host/benches/mlflow.rs runs it against Weft and
against `mlflow server`): the official client, unchanged, at MLFLOW_TRACKING_URI.

1. logging: 100 runs, each 10 params and 100 metric steps in one log_batch, one small
   artifact, then ended;
2. populating: 10,000 runs (a param and two metrics each, by log_batch) from 8 threads;
3. searching those 10,000 runs with a filter (through the client, then as the bare HTTP
   call, without the client's parsing of the answer), and ordered by a metric, 5 times.

Prints one JSON line of seconds."""
import json, os, statistics, sys, tempfile, time, urllib.request
from concurrent.futures import ThreadPoolExecutor

from mlflow import MlflowClient
from mlflow.entities import Metric, Param

RUNS = 100
SEARCHED = 10_000
THREADS = 8
FILTER = "metrics.acc > 0.9 and params.group = 'g3'"


def logging(client):
    experiment = client.create_experiment("bench-logging")
    folder = tempfile.mkdtemp()
    artifact = os.path.join(folder, "notes.txt")
    with open(artifact, "w") as f:
        f.write("a small artifact\n" * 64)
    started = time.perf_counter()
    for i in range(RUNS):
        run = client.create_run(experiment, run_name=f"run-{i}")
        now = int(time.time() * 1000)
        params = [Param(f"p{k}", str(k * i)) for k in range(10)]
        metrics = [Metric("loss", 1.0 / (s + 1), now, s) for s in range(100)]
        client.log_batch(run.info.run_id, metrics=metrics, params=params)
        client.log_artifact(run.info.run_id, artifact)
        client.set_terminated(run.info.run_id)
    return time.perf_counter() - started


def populate(client):
    experiment = client.create_experiment("bench-search")

    def one(i):
        run = client.create_run(experiment)
        now = int(time.time() * 1000)
        client.log_batch(
            run.info.run_id,
            metrics=[Metric("acc", (i % 1000) / 1000, now, 0), Metric("loss", i / SEARCHED, now, 0)],
            params=[Param("group", f"g{i % 10}")],
        )

    started = time.perf_counter()
    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(one, range(SEARCHED)))
    return experiment, time.perf_counter() - started


def raw_search(experiment):
    """The filtered search's HTTP call alone, without the client's parsing of the answer."""
    uri = os.environ["MLFLOW_TRACKING_URI"].rstrip("/") + "/api/2.0/mlflow/runs/search"
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = json.dumps({"experiment_ids": [experiment], "filter": FILTER, "max_results": 1000})
    request = urllib.request.Request(uri, data=body.encode(), headers={**headers, "Content-Type": "application/json"})
    started = time.perf_counter()
    with urllib.request.urlopen(request) as answer:
        answer.read()
    return time.perf_counter() - started


def searching(client, experiment):
    filtered, raw, ordered, found = [], [], [], 0
    for _ in range(5):
        started = time.perf_counter()
        runs = client.search_runs([experiment], filter_string=FILTER, max_results=1000)
        filtered.append(time.perf_counter() - started)
        found = len(runs)
        raw.append(raw_search(experiment))
        started = time.perf_counter()
        client.search_runs([experiment], order_by=["metrics.loss ASC"], max_results=100)
        ordered.append(time.perf_counter() - started)
    return statistics.median(filtered), statistics.median(raw), statistics.median(ordered), found


def main():
    client = MlflowClient()
    phase = sys.argv[1] if len(sys.argv) > 1 else "all"
    out = {}
    if phase in ("all", "logging"):
        out["logging_s"] = logging(client)
    if phase in ("all", "search"):
        experiment, out["populate_s"] = populate(client)
        out["search_s"], out["search_raw_s"], out["ordered_s"], out["found"] = searching(client, experiment)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
