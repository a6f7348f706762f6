"""A SwarmPilot task instance, written from SwarmPilot's own sources, not from Weft's.

Weft's scheduler must serve instances that follow SwarmPilot's TaskInstance protocol to the
letter. This peer is written from the other side's code, with its exact field names:

- what SwarmPilot's scheduler calls on an instance and reads from its answers: its
  `TaskInstanceClient` (`src/scheduler/client.py` of SwarmPilot's scheduler, the
  `swarmpilot_globalqueue` sources): `GET /info` answering `{status, timestamp,
  deployed_model: {model_name, replicas}, queue_info: {length_of_queue}, instance_status,
  uptime}`, `POST /queue/submit` with `{model_name, task_input, metadata, task_id}`,
  `POST /queue/predict` answering `PredictResponse {expected_ms, error_ms, queue_size}`,
  `GET /queue/status` answering `QueueStatusResponse {queue_size, model_type, expected_ms,
  error_ms}`, `GET /results/{task_id}` answering `TaskResult`;
- how an instance reports to the scheduler (`src/scheduler/api.py` and `models.py`):
  `POST /notify/task_complete` with `TaskCompletionNotification {task_id, instance_id,
  execution_time}`, `POST /result/submit` with `ResultSubmitRequest {task_id, instance_id,
  execution_time, result, metadata, replica_id}`, or the `/ws/result_submit` WebSocket
  (`register`, then `result` messages, each acknowledged); `instance_id` is the instance's
  base URL without its scheme (`host:port`), which is how that scheduler finds it.

It registers with nothing but the seed's body, `{"host", "port"}`, and sends no token: a
SwarmPilot instance has none. Standard library only, except `websockets` for `--report ws`.

Usage: swarmpilot_task_instance.py --model M --scheduler URL [--report notify|result|ws|none]
[--backlog N] [--no-predict] [--service-ms MS]. Prints `listening PORT` when it serves.
"""

import argparse
import json
import queue
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOST = "127.0.0.1"


class Instance:
    def __init__(self, args):
        self.args = args
        self.started = time.time()
        self.lock = threading.Lock()
        self.jobs = queue.Queue()
        self.waiting = 0
        self.results = {}
        self.port = 0
        self.socket = None

    @property
    def instance_id(self):
        # SwarmPilot's TaskInstanceClient: base_url.replace("http://", "").
        return f"{HOST}:{self.port}"

    def queue_length(self):
        with self.lock:
            return self.waiting + self.args.backlog

    def info(self):
        length = self.queue_length()
        return {
            "status": "success",
            "timestamp": time.time(),
            "deployed_model": {"model_name": self.args.model, "replicas": 1},
            "queue_info": {"length_of_queue": length},
            "instance_status": "running" if length else "idle",
            "uptime": time.time() - self.started,
        }

    def predict(self):
        length = self.queue_length()
        return {
            "expected_ms": (length + 1) * self.args.service_ms,
            "error_ms": self.args.service_ms / 10,
            "queue_size": length,
        }

    def enqueue(self, body):
        with self.lock:
            self.waiting += 1
        self.jobs.put((body, time.time()))
        return {"status": "success", "task_id": body["task_id"], "queue_size": self.queue_length()}

    def work(self):
        while True:
            body, enqueued = self.jobs.get()
            began = time.time()
            time.sleep(self.args.service_ms / 1000)
            done = time.time()
            result = {"echo": body["task_input"], "model": body["model_name"]}
            execution_ms = (done - began) * 1000
            self.results[body["task_id"]] = {
                "task_id": body["task_id"],
                "result": result,
                "status": "completed",
                "error": None,
                "enqueue_time": enqueued,
                "completion_time": done,
                "wait_time": (began - enqueued) * 1000,
                "execution_time": execution_ms,
                "total_time": (done - enqueued) * 1000,
            }
            with self.lock:
                self.waiting -= 1
            try:
                self.report(body["task_id"], execution_ms, result)
            except Exception as err:  # shown to the test; the next task is still run
                print(f"report of {body['task_id']} failed: {err!r}", flush=True)

    def report(self, task_id, execution_ms, result):
        mode = self.args.report
        if mode == "none":  # an instance that loses its reports
            return
        if mode == "notify":
            body = {"task_id": task_id, "instance_id": self.instance_id, "execution_time": execution_ms}
            answer = post(f"{self.args.scheduler}/notify/task_complete", body)
        elif mode == "result":
            body = {
                "task_id": task_id,
                "instance_id": self.instance_id,
                "execution_time": execution_ms,
                "result": result,
                "metadata": {},
                "replica_id": "replica-0",
            }
            answer = post(f"{self.args.scheduler}/result/submit", body)
        else:
            answer = self.report_over_socket(task_id, execution_ms, result)
        print(f"reported {task_id} {json.dumps(answer)}", flush=True)

    def report_over_socket(self, task_id, execution_ms, result):
        from websockets.sync.client import connect

        if self.socket is None:
            url = self.args.scheduler.replace("http://", "ws://") + "/ws/result_submit"
            self.socket = connect(url)
            self.socket.send(json.dumps({"type": "register", "instance_id": self.instance_id}))
            registered = json.loads(self.socket.recv())
            if registered.get("type") != "registered":
                raise RuntimeError(f"not registered: {registered}")
        self.socket.send(json.dumps({
            "type": "result",
            "task_id": task_id,
            "instance_id": self.instance_id,
            "execution_time": execution_ms,
            "result": result,
            "metadata": {},
        }))
        return json.loads(self.socket.recv())


def post(url, body):
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.loads(answer.read())
    except urllib.error.HTTPError as err:
        return {"http_status": err.code, "body": err.read().decode(errors="replace")}


def handler(instance):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def answer(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def body(self):
            length = int(self.headers.get("Content-Length") or 0)
            return json.loads(self.rfile.read(length) or b"{}")

        def do_GET(self):
            if self.path == "/info":
                self.answer(200, instance.info())
            elif self.path == "/queue/status":
                p = instance.predict()
                self.answer(200, {
                    "queue_size": p["queue_size"],
                    "model_type": instance.args.model,
                    "expected_ms": p["expected_ms"],
                    "error_ms": p["error_ms"],
                })
            elif self.path.startswith("/results/"):
                found = instance.results.get(self.path[len("/results/"):])
                self.answer(200 if found else 404, found or {"detail": "Task not found"})
            else:
                self.answer(404, {"detail": "Not Found"})

        def do_POST(self):
            if self.path == "/queue/submit":
                body = self.body()
                if body.get("model_name") != instance.args.model:
                    self.answer(400, {"detail": f"model {body.get('model_name')} is not deployed"})
                else:
                    self.answer(200, instance.enqueue(body))
            elif self.path == "/queue/predict" and not instance.args.no_predict:
                self.answer(200, instance.predict())
            else:
                self.answer(404, {"detail": "Not Found"})

    return Handler


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--scheduler", required=True)
    parser.add_argument("--report", choices=["notify", "result", "ws", "none"], default="result")
    parser.add_argument("--backlog", type=int, default=0, help="tasks queued from elsewhere")
    parser.add_argument("--no-predict", action="store_true", help="no /queue/predict")
    parser.add_argument("--service-ms", type=float, default=5.0)
    args = parser.parse_args()
    args.scheduler = args.scheduler.rstrip("/")
    instance = Instance(args)
    server = ThreadingHTTPServer((HOST, 0), handler(instance))
    instance.port = server.server_address[1]
    threading.Thread(target=instance.work, daemon=True).start()
    print(f"listening {instance.port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
