"""deploy/grafana/moss-dashboard.json against real metrics: the local stack serves some traffic
(cold and warm runs, a wrong request key, a revoked grant), Debian's prometheus scrapes it on
loopback with deploy/prometheus/prometheus.yml (scrape interval shortened, targets pointed at the
stack), and every query of the dashboard must return data through Prometheus' HTTP API."""
import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import yaml

from support import DIGITS, ROOT, LocalStack, free_port, need_binaries, run
from moss_client import MossError, infer

PROMETHEUS = Path("/usr/bin/prometheus")
DASHBOARD = ROOT / "deploy" / "grafana" / "moss-dashboard.json"
SCRAPE_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"
TARGETS_SCRIPT = ROOT / "deploy" / "prometheus" / "moss_worker_targets.py"
RELAY_SCRIPT = ROOT / "deploy" / "prometheus" / "keyservice_metrics_relay.py"


def dashboard_queries():
    d = json.loads(DASHBOARD.read_text())
    return [(p["title"], t["expr"]) for p in d["panels"] for t in p["targets"]]


class DashboardQueriesReturnData(unittest.TestCase):
    def setUp(self):
        need_binaries("moss", "moss-keyservice", "moss-worker", "moss-packer")
        if not os.access(PROMETHEUS, os.X_OK):
            msg = "Debian's prometheus is not installed (tools/install-deps.sh installs it)"
            if os.environ.get("MOSS_REQUIRE_BINARIES"):
                self.fail(msg)
            self.skipTest(msg)
        self.tmp = Path(tempfile.mkdtemp(prefix="moss-py-prom-"))
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.stack = LocalStack(self.tmp)
        self.addCleanup(self.stack.stop)

    def traffic(self, n):
        x = np.load(DIGITS / "inputs" / "digit_0.npy")
        for _ in range(n):
            infer(self.model_id, {"image": x}, self.stack.invoke_url,
                  config=str(self.user_dir / "client.json"), token=self.stack.token)

    def publish_and_use(self):
        s = self.stack
        owner, self.model_id, _ = s.publish_digits(self.tmp)
        (user, ud), (revoked, rd) = s.principal(self.tmp, "user"), s.principal(self.tmp, "revoked")
        for c in (owner, user, revoked):
            self.addCleanup(c.close)
        for c in (user, revoked):
            owner.grant(self.model_id, c.principal_id, s.worker_measurement)
            c.add_request_key(self.model_id, s.worker_measurement)
        owner.revoke(self.model_id, revoked.principal_id, s.worker_measurement)
        self.user_dir = ud
        self.traffic(3)  # cold, then warm
        x = np.load(DIGITS / "inputs" / "digit_1.npy")
        for kw in ({"config": str(rd / "client.json")},  # revoked grant: release denied
                   {"identity": user.identity, "request_key": os.urandom(32)}):  # wrong key
            with self.assertRaises(MossError):
                infer(self.model_id, {"image": x}, s.invoke_url, token=s.token, **kw)

    def start_prometheus(self):
        packer_url = self.stack.invoke_url.split("/v1/pools/")[0]
        targets = self.tmp / "workers.json"
        run("/usr/bin/python3", TARGETS_SCRIPT, "--packer", packer_url, "--token-file",
            self.stack.info["token_file"], "--out", targets)
        self.assertTrue(json.loads(targets.read_text()), "no worker targets from FnPacker")
        cfg = yaml.safe_load(SCRAPE_CONFIG.read_text())
        cfg["global"]["scrape_interval"] = "1s"
        cfg["global"]["evaluation_interval"] = "1s"
        relay = f"127.0.0.1:{free_port()}"
        self.spawn("relay", ["/usr/bin/python3", str(RELAY_SCRIPT), "--keyservice",
                             self.stack.info["keyservice_url"], "--listen", relay])
        for job in cfg["scrape_configs"]:
            if job["job_name"] == "moss-keyservice":
                job["static_configs"] = [{"targets": [relay]}]
            if job["job_name"] == "moss-worker":
                job["file_sd_configs"] = [{"files": [str(targets)], "refresh_interval": "1s"}]
        (self.tmp / "prometheus.yml").write_text(yaml.safe_dump(cfg))
        self.port = free_port()
        self.spawn("prometheus", [str(PROMETHEUS), f"--config.file={self.tmp / 'prometheus.yml'}",
                                  f"--web.listen-address=127.0.0.1:{self.port}",
                                  f"--storage.tsdb.path={self.tmp / 'tsdb'}"])

    def spawn(self, name, argv):
        """Starts a process we stop (by its handle) when the test ends; output in NAME.log."""
        log = open(self.tmp / f"{name}.log", "w")
        self.addCleanup(log.close)
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)

        def stop():
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.addCleanup(stop)

    def api(self, path, **params):
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=5) as r:
            return json.loads(r.read())["data"]

    def wait_for_scrapes(self, timeout=30.0):
        deadline, active = time.time() + timeout, []
        while time.time() < deadline:
            try:
                active = self.api("targets")["activeTargets"]
                jobs = {t["labels"]["job"] for t in active if t["health"] == "up"}
                if {"moss-keyservice", "moss-worker"} <= jobs:
                    return
            except OSError:
                pass
            time.sleep(0.3)
        targets = [(t["labels"]["job"], t["health"], t["lastError"]) for t in active]
        log = (self.tmp / "prometheus.log").read_text()[-2000:]
        self.fail(f"prometheus did not scrape both jobs within {timeout} s: {targets}\n{log}")

    def test_every_dashboard_query_returns_data(self):
        queries = dashboard_queries()
        self.assertGreaterEqual(len(queries), 20)
        self.publish_and_use()
        self.start_prometheus()
        self.wait_for_scrapes()
        self.traffic(2)       # traffic Prometheus sees change
        time.sleep(3.5)       # a few more 1 s scrapes, so rates and increases have two samples
        empty = []
        for title, expr in queries:
            data = self.api("query", query=expr)
            if not data["result"]:
                empty.append(f"{title}: {expr}")
        self.assertEqual(empty, [], "dashboard queries without data")
        # and the traffic above is what the metrics say
        def value(expr):
            r = self.api("query", query=expr)["result"]
            return float(r[0]["value"][1]) if r else 0.0
        self.assertGreaterEqual(value("sum(moss_keyservice_releases_total)"), 1)
        self.assertGreaterEqual(value("sum(moss_keyservice_release_denied_total)"), 1)
        self.assertGreaterEqual(value('sum(moss_worker_errors_total{code="unauthenticated"})'), 1)
        self.assertGreaterEqual(value('sum(moss_worker_errors_total{code="permission-denied"})'), 1)
        self.assertGreaterEqual(value('sum(moss_worker_runs_total{kind="warm"})'), 3)
        self.assertEqual(value('count by (pool) (up{job="moss-worker"} == 1)'), 1)
        print(f"dashboard check: {len(queries)} queries of "
              f"{len(json.loads(DASHBOARD.read_text())['panels'])} panels returned data")


if __name__ == "__main__":
    unittest.main()
