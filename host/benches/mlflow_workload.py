"""The MLflow benchmark's client workload (host/benches/mlflow.rs runs it against Weft and
against `mlflow server`): the official client, unchanged, at MLFLOW_TRACKING_URI.

1. logging: 100 runs, each 10 params and 100 metric steps in one log_batch, one small
   artifact, then ended;
2. populating: 10,000 runs (a param and two metrics each, by log_batch) from 8 threads;
3. searching those 10,000 runs with a filter (through the client, then as the bare HTTP
   call, without the client's parsing of the answer), and ordered by a metric, 5 times; the
   client's parsing alone is timed on the bare call's answer;
4. large: one 1 GiB artifact logged and downloaded back (its size checked).

`populate` prints the experiment's id with its figure; `search ID` searches an experiment
populated before (the benchmark keeps a populated `mlflow server` database between runs).
Prints one JSON line of seconds."""
import json, os, shutil, statistics, sys, tempfile, time, urllib.request
from concurrent.futures import ThreadPoolExecutor

from mlflow import MlflowClient
from mlflow.entities import Metric, Param

RUNS = 100
SEARCHED = 10_000
THREADS = 8
FILTER = "metrics.acc > 0.9 and params.group = 'g3'"


def logging(client):
    # Unique: a kept database may hold the experiment of an earlier run.
    experiment = client.create_experiment(f"bench-logging-{time.time_ns()}")
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
    experiment = client.create_experiment(f"bench-search-{time.time_ns()}")

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
    """The filtered search's HTTP call alone, without the client's parsing of the answer: its
    seconds and the answer's bytes."""
    uri = os.environ["MLFLOW_TRACKING_URI"].rstrip("/") + "/api/2.0/mlflow/runs/search"
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = json.dumps({"experiment_ids": [experiment], "filter": FILTER, "max_results": 1000})
    request = urllib.request.Request(uri, data=body.encode(), headers={**headers, "Content-Type": "application/json"})
    started = time.perf_counter()
    with urllib.request.urlopen(request) as answer:
        body = answer.read()
    return time.perf_counter() - started, body


def parse(body):
    """The client's own work on a search's answer (what `search_runs` does after the HTTP
    call): the JSON parsed into its protobuf message, then into Run entities."""
    from google.protobuf.json_format import Parse
    from mlflow.entities import Run
    from mlflow.protos.service_pb2 import SearchRuns

    started = time.perf_counter()
    message = Parse(body, SearchRuns.Response())
    runs = [Run.from_proto(proto) for proto in message.runs]
    return time.perf_counter() - started, len(runs)


def searching(client, experiment):
    filtered, raw, parsing, ordered, found = [], [], [], [], 0
    for _ in range(5):
        started = time.perf_counter()
        runs = client.search_runs([experiment], filter_string=FILTER, max_results=1000)
        filtered.append(time.perf_counter() - started)
        found = len(runs)
        seconds, body = raw_search(experiment)
        raw.append(seconds)
        seconds, parsed = parse(body)
        assert parsed == found, (parsed, found)
        parsing.append(seconds)
        started = time.perf_counter()
        client.search_runs([experiment], order_by=["metrics.loss ASC"], max_results=100)
        ordered.append(time.perf_counter() - started)
    return {
        "search_s": statistics.median(filtered),
        "search_raw_s": statistics.median(raw),
        "parse_s": statistics.median(parsing),
        "ordered_s": statistics.median(ordered),
        "found": found,
    }


def large(client):
    """A 1 GiB artifact logged to a run and downloaded back: seconds of each way."""
    experiment = client.create_experiment(f"bench-large-{time.time_ns()}")
    run = client.create_run(experiment)
    folder = tempfile.mkdtemp()
    try:
        path = os.path.join(folder, "big.bin")
        block = os.urandom(1 << 20)
        with open(path, "wb") as f:
            for _ in range(1024):
                f.write(block)
        started = time.perf_counter()
        client.log_artifact(run.info.run_id, path)
        upload = time.perf_counter() - started
        os.remove(path)
        started = time.perf_counter()
        back = client.download_artifacts(run.info.run_id, "big.bin", folder)
        download = time.perf_counter() - started
        size = os.path.getsize(back)
        assert size == 1 << 30, size
        # Byte-identical: every MiB is the block written.
        with open(back, "rb") as f:
            while chunk := f.read(1 << 20):
                assert chunk == block
    finally:
        shutil.rmtree(folder)
    return {"upload_s": upload, "download_s": download}


def main():
    client = MlflowClient()
    phase = sys.argv[1]
    out = {}
    if phase == "logging":
        out["logging_s"] = logging(client)
    if phase == "populate":
        out["experiment"], out["populate_s"] = populate(client)
    if phase == "search":
        out.update(searching(client, sys.argv[2]))
    if phase == "large":
        out.update(large(client))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
