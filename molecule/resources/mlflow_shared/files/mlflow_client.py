#!/usr/bin/env python3
"""What a user of the tracking server does, with MLflow's own Python client.

  mlflow_client.py log   --uri URI --state FILE --label LABEL
      create an experiment and a run with params, a metric history, tags and artifacts (binary
      and text, one in a sub-directory), read the run back at once and add that snapshot to FILE
  mlflow_client.py check --uri URI --state FILE
      read every run recorded in FILE back from the server and compare it with its snapshot
  mlflow_client.py fill  --uri URI --state FILE
      write metrics until the server refuses (its disk is full); print the refusal's HTTP status
      and message, and exit non-zero if it never refused
  mlflow_client.py dump  --uri URI --state FILE
      read everything the server holds (every experiment, run with its params, tags, full metric
      histories and artifacts' checksums, registered model and version with tags and aliases)
      into FILE; print the counts and the SHA-256 of the whole
  mlflow_client.py compare --uri URI --state FILE
      read it all again and compare with FILE: exit non-zero naming each difference
  mlflow_client.py stream --uri URI --state FILE --seconds N
      log metric batches to one run for N seconds (a steady stream of writes, e.g. during a
      backup); print how many were written and how many failed

With --token TOKEN the client sends it as a bearer token (a signed-in user's ID token, through the
public nginx); --insecure accepts a self-signed certificate.

With --identity EMAIL every request carries the header nginx sets for a signed-in user
(X-Forwarded-Email), as nginx would: this client stands where the public nginx does.

Exits non-zero, naming every difference, when the server lost or changed anything.
"""

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time

import requests
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient
from mlflow.tracking.request_header.abstract_request_header_provider import RequestHeaderProvider
from mlflow.tracking.request_header.registry import _request_header_provider_registry

IDENTITY_HEADERS = {}


class _NginxIdentity(RequestHeaderProvider):
    """The header nginx adds after the sign-in check, on every request of MLflow's client."""

    def in_context(self):
        return bool(IDENTITY_HEADERS)

    def request_headers(self):
        return dict(IDENTITY_HEADERS)


_request_header_provider_registry.register(_NginxIdentity)


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def snapshot(client, run_id):
    """Everything the server keeps about a run, in a JSON-comparable form."""
    run = client.get_run(run_id)
    experiment = client.get_experiment(run.info.experiment_id)
    metrics = {
        key: [
            [m.step, m.timestamp, m.value]
            for m in sorted(client.get_metric_history(run_id, key), key=lambda m: (m.step, m.timestamp))
        ]
        for key in sorted(run.data.metrics)
    }
    artifacts = {}
    with tempfile.TemporaryDirectory() as scratch:
        pending = [None]
        while pending:
            for info in client.list_artifacts(run_id, pending.pop()):
                if info.is_dir:
                    pending.append(info.path)
                    continue
                local = client.download_artifacts(run_id, info.path, scratch)
                artifacts[info.path] = {"size": os.path.getsize(local), "sha256": _sha256(local)}
    return {
        "run_id": run_id,
        "experiment": {"id": experiment.experiment_id, "name": experiment.name,
                       "artifact_location": experiment.artifact_location},
        "info": {"run_name": run.info.run_name, "status": run.info.status,
                 "start_time": run.info.start_time, "end_time": run.info.end_time,
                 "lifecycle_stage": run.info.lifecycle_stage},
        "params": dict(sorted(run.data.params.items())),
        "tags": {k: v for k, v in sorted(run.data.tags.items()) if not k.startswith("mlflow.")},
        "metrics": metrics,
        "artifacts": dict(sorted(artifacts.items())),
    }


def everything(client):
    """All the server holds, in a canonical JSON-comparable form."""
    from mlflow.entities import ViewType

    experiments = sorted(client.search_experiments(view_type=ViewType.ALL), key=lambda e: e.experiment_id)
    dump = {"experiments": {}, "runs": {}, "registered_models": {}}
    for experiment in experiments:
        dump["experiments"][experiment.experiment_id] = {
            "name": experiment.name, "artifact_location": experiment.artifact_location,
            "lifecycle_stage": experiment.lifecycle_stage, "tags": dict(sorted(experiment.tags.items()))}
        for run in client.search_runs([experiment.experiment_id], run_view_type=ViewType.ALL, max_results=50000):
            saved = snapshot(client, run.info.run_id)
            saved["all_tags"] = dict(sorted(run.data.tags.items()))
            saved["user_id"] = run.info.user_id
            dump["runs"][run.info.run_id] = saved
    for model in client.search_registered_models(max_results=1000):
        versions = client.search_model_versions(f"name='{model.name}'", max_results=1000)
        dump["registered_models"][model.name] = {
            "description": model.description, "tags": dict(sorted(model.tags.items())),
            "aliases": dict(sorted(getattr(model, "aliases", {}).items())),
            "versions": {v.version: {"source": v.source, "run_id": v.run_id, "status": v.status,
                                     "description": v.description, "tags": dict(sorted(v.tags.items()))}
                         for v in sorted(versions, key=lambda v: int(v.version))}}
    return dump


def summary(dump):
    canonical = json.dumps(dump, sort_keys=True, separators=(",", ":"))
    runs = dump["runs"].values()
    return {"experiments": len(dump["experiments"]), "runs": len(dump["runs"]),
            "params": sum(len(r["params"]) for r in runs), "tags": sum(len(r["all_tags"]) for r in runs),
            "metric_points": sum(len(h) for r in runs for h in r["metrics"].values()),
            "artifacts": sum(len(r["artifacts"]) for r in runs),
            "registered_models": len(dump["registered_models"]),
            "model_versions": sum(len(m["versions"]) for m in dump["registered_models"].values()),
            "sha256": hashlib.sha256(canonical.encode()).hexdigest()}


def differences(was, now, path=""):
    """Where two dumps differ, as readable paths."""
    if isinstance(was, dict) and isinstance(now, dict):
        found = []
        for key in sorted(set(was) | set(now), key=str):
            if key not in now:
                found.append(f"{path}/{key}: missing now")
            elif key not in was:
                found.append(f"{path}/{key}: new")
            else:
                found += differences(was[key], now[key], f"{path}/{key}")
        return found
    return [] if was == now else [f"{path}: was {was!r}, now {now!r}"]


def stream(client, seconds):
    """Metric batches to one run for ``seconds``: (written, failures)."""
    experiment_id = client.create_experiment(f"molecule-stream-{int(time.time() * 1000)}")
    run_id = client.create_run(experiment_id).info.run_id
    written = failed = step = 0
    end = time.time() + seconds
    while time.time() < end:
        try:
            client.log_batch(run_id, metrics=[Metric(f"m{i}", float(step), int(time.time() * 1000), step)
                                              for i in range(10)])
            written += 1
        except Exception as error:  # pylint: disable=broad-except  # counted, and named below
            failed += 1
            print(f"write {step} failed: {str(error)[:200]}", file=sys.stderr)
        step += 1
        time.sleep(0.05)
    return written, failed


def log(client, label):
    experiment_id = client.create_experiment(f"molecule-{label}-{int(time.time() * 1000)}",
                                             tags={"purpose": "no data lost across upgrades"})
    start = 1_700_000_000_000
    run = client.create_run(experiment_id, start_time=start, run_name=f"run-{label}",
                            tags={"label": label, "unicode": "Grüße ✓"})
    run_id = run.info.run_id
    params = {"learning_rate": "0.001", "optimizer": "adamw", "label": label, "layers": "[64, 32, 16]"}
    values = [0.0, 1e-30, -2.5, 3.141592653589793, 1e300, 42.0, 0.1 + 0.2, 7.0, -1e-7, 123456.789]
    metrics = [Metric("loss", v, start + step, step) for step, v in enumerate(values)]
    metrics += [Metric("accuracy", 0.5 + step / 20, start + step, step) for step in range(10)]
    client.log_batch(run_id, metrics=metrics, params=[Param(k, v) for k, v in params.items()],
                     tags=[RunTag("stage", "before")])
    with tempfile.TemporaryDirectory() as scratch:
        blob = os.path.join(scratch, "weights.bin")
        with open(blob, "wb") as handle:
            handle.write(os.urandom(256 * 1024))
        notes = os.path.join(scratch, "notes.txt")
        with open(notes, "w", encoding="utf-8") as handle:
            handle.write(f"run {run_id} ({label}): ünïcode and\nseveral lines\n")
        client.log_artifact(run_id, blob)
        client.log_artifact(run_id, notes, artifact_path="reports/text")
        sent = {"weights.bin": _sha256(blob), "reports/text/notes.txt": _sha256(notes)}
    client.set_terminated(run_id, "FINISHED", end_time=start + 60_000)
    model = f"molecule-model-{label}"
    if not client.search_registered_models(f"name='{model}'"):
        client.create_registered_model(model, tags={"team": "ops"}, description="kept across backups")
    version = client.create_model_version(model, f"{run.info.artifact_uri}/weights.bin", run_id=run_id,
                                          tags={"label": label}, description=f"weights of {label}")
    client.set_registered_model_alias(model, "champion", version.version)

    saved = snapshot(client, run_id)
    problems = []
    if saved["params"] != params:
        problems.append(f"params read back {saved['params']} != logged {params}")
    for key, logged in (("loss", values), ("accuracy", [0.5 + s / 20 for s in range(10)])):
        got = [v for _, _, v in saved["metrics"].get(key, [])]
        if got != logged:
            problems.append(f"metric {key} read back {got} != logged {logged}")
    got = {path: meta["sha256"] for path, meta in saved["artifacts"].items()}
    if got != sent:
        problems.append(f"artifacts read back {got} != uploaded {sent}")
    return saved, problems


class Refused(Exception):
    """The server answered a write with something other than 200."""


def fill(uri, batches=200):
    """Log batches of 1000 metrics until the server refuses one; return what the refusal said.

    Straight over REST: the client would retry a 503 and then report only "too many 503 error
    responses", and the server's own message is what this checks.
    """
    api = f"{uri}/api/2.0/mlflow"
    now = int(time.time() * 1000)

    def post(path, body):
        reply = requests.post(f"{api}/{path}", json=body, headers=IDENTITY_HEADERS, timeout=60)
        if reply.status_code != 200:
            raise Refused(path, reply.status_code, reply.text[:2000])
        return reply.json()

    try:
        experiment_id = post("experiments/create", {"name": f"molecule-disk-full-{now}"})["experiment_id"]
        run_id = post("runs/create", {"experiment_id": experiment_id, "start_time": now})["run"]["info"]["run_id"]
        for step in range(batches):
            metrics = [{"key": f"filler_{i}", "value": float(i), "timestamp": now, "step": step} for i in range(1000)]
            post("runs/log-batch", {"run_id": run_id, "metrics": metrics})
    except Refused as refusal:
        path, status, body = refusal.args
        return {"refused": True, "at": path, "status": status, "body": body}
    return {"refused": False, "batches": batches}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("action", choices=["log", "check", "fill", "dump", "compare", "stream"])
    parser.add_argument("--uri", required=True, help="tracking server URL, e.g. http://10.88.0.5:8080")
    parser.add_argument("--state", required=True, help="JSON file of recorded runs")
    parser.add_argument("--label", default="run")
    parser.add_argument("--identity", default="", help="the signed-in email nginx would pass (X-Forwarded-Email)")
    parser.add_argument("--token", default="", help="a bearer token (through the public nginx)")
    parser.add_argument("--insecure", action="store_true", help="accept a self-signed certificate")
    parser.add_argument("--seconds", type=float, default=30, help="stream: for how long")
    args = parser.parse_args()
    if args.identity:
        IDENTITY_HEADERS["X-Forwarded-Email"] = args.identity
    if args.token:
        os.environ["MLFLOW_TRACKING_TOKEN"] = args.token
    if args.insecure:
        os.environ["MLFLOW_TRACKING_INSECURE_TLS"] = "true"
    client = MlflowClient(tracking_uri=args.uri)

    recorded = []
    if args.action in ("log", "check") and os.path.exists(args.state):
        with open(args.state, encoding="utf-8") as handle:
            recorded = json.load(handle)

    if args.action == "fill":
        answer = fill(args.uri)
        print(json.dumps(answer))
        if not answer["refused"]:
            sys.exit(f"the server took {answer['batches']} batches of 1000 metrics on a full disk")
        return

    if args.action == "dump":
        dump = everything(client)
        with open(args.state, "w", encoding="utf-8") as handle:
            json.dump(dump, handle, indent=1, sort_keys=True)
        print(json.dumps(summary(dump)))
        return
    if args.action == "compare":
        with open(args.state, encoding="utf-8") as handle:
            was = json.load(handle)
        now = everything(client)
        found = differences(was, json.loads(json.dumps(now)))
        if found:
            sys.exit(f"{len(found)} differences from {args.state}:\n  " + "\n  ".join(found[:50]))
        print(json.dumps(dict(summary(now), identical=True)))
        return
    if args.action == "stream":
        written, failed = stream(client, args.seconds)
        print(json.dumps({"batches_written": written, "failed": failed}))
        return

    if args.action == "log":
        saved, problems = log(client, args.label)
        if problems:
            sys.exit("the server changed data as it was logged:\n  " + "\n  ".join(problems))
        recorded.append(saved)
        with open(args.state, "w", encoding="utf-8") as handle:
            json.dump(recorded, handle, indent=1, sort_keys=True)
        print(json.dumps({"logged": saved["run_id"], "runs_recorded": len(recorded),
                          "artifacts": saved["artifacts"]}))
        return

    if not recorded:
        sys.exit(f"{args.state} records no runs: nothing to compare")
    problems = []
    for saved in recorded:
        now = snapshot(client, saved["run_id"])
        for part in saved:
            if now.get(part) != saved[part]:
                problems.append(f"run {saved['run_id']} {part}: was {saved[part]!r}, now {now.get(part)!r}")
    if problems:
        sys.exit("data differs from what was logged:\n  " + "\n  ".join(problems))
    print(json.dumps({"identical_runs": [s["run_id"] for s in recorded],
                      "metrics_points": sum(len(h) for s in recorded for h in s["metrics"].values()),
                      "artifacts": sum(len(s["artifacts"]) for s in recorded)}))


if __name__ == "__main__":
    main()
