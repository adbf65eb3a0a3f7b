"""bench/plot_results.py parses the benchmark output formats (lines made here with the C++
programs' own printf formats) and writes the SVG plots."""
import importlib.util
import json

from support import ROOT, TempDirCase

spec = importlib.util.spec_from_file_location("plot_results", ROOT / "bench" / "plot_results.py")
plot_results = importlib.util.module_from_spec(spec)
spec.loader.exec_module(plot_results)

PACKER_HEADER = "%-24s %8s %7s %7s %6s %7s %9s %9s %9s %10s %9s" % (
    "policy", "requests", "served", "failed", "cold", "starts", "switches", "p50 ms", "p99 ms",
    "inst-s", "peak MiB")
PACKER_ROW = "%-24s %8d %7d %7d %6d %7d %9d %9.1f %9.1f %10.1f %9.0f"
KS_ROW = "%-8d %-9s %12.0f %10.0f %10.0f %8d %12s"
COLD = ("cold %-13s process start+attestation %7.1f ms | first request %7.1f ms: key_fetch %.1f "
        "model_fetch %.1f decrypt %.1f compile %.1f inference %.1f encrypt %.2f (run=%s)")


def sample_log() -> str:
    return "\n".join([
        "== model_crypt_bench", "whatever it prints",
        "== packer_trace_bench --quick", "trace: 1426 requests, ...", PACKER_HEADER,
        PACKER_ROW % ("MOSS", 1426, 1426, 0, 3, 3, 92, 15.1, 389.4, 111.7, 1510),
        PACKER_ROW % ("original rule", 1426, 1089, 337, 4, 4, 282, 62.1, 441.1, 177.4, 2016),
        "    first failure: deadline",
        PACKER_ROW % ("one function per model", 1426, 1426, 0, 49, 49, 0, 15.1, 1123.2, 686.1, 1962),
        "MOSS vs original (same run): ...",
        "== keyservice_bench --seconds 2 --threads 1,4",
        KS_ROW % (1, "noop", 5000, 180, 400, 0, "1.00"),
        (KS_ROW % (1, "release", 900, 1000, 3000, 0, "")).rstrip() + " 0.18",
        KS_ROW % (4, "noop", 9000, 400, 900, 0, "1.00"),
        (KS_ROW % (4, "release", 1500, 2500, 6000, 0, "")).rstrip() + " 0.17",
        "== worker_bench --bin-dir x",
        COLD % ("mobilenet_v2", 120.0, 300.0, 10.0, 2.0, 8.0, 30.0, 12.0, 0.05, "cold"),
        COLD % ("digits", 110.0, 20.0, 9.0, 1.0, 1.0, 2.0, 0.5, 0.01, "cold"),
    ]) + "\n"


class PlotResults(TempDirCase):
    def test_parsers(self):
        sec = plot_results.sections(sample_log())
        packer = plot_results.parse_packer(sec["packer_trace_bench"])
        self.assertEqual([r["policy"] for r in packer], ["MOSS", "original rule", "one function per model"])
        self.assertEqual((packer[1]["failed"], packer[2]["cold"], packer[0]["p99_ms"]), (337, 49, 389.4))
        ks = plot_results.parse_keyservice(sec["keyservice_bench"])
        self.assertEqual([(r["threads"], r["endpoint"], r["rps"]) for r in ks],
                         [(1, "noop", 5000), (1, "release", 900), (4, "noop", 9000), (4, "release", 1500)])
        cold = plot_results.parse_worker_cold(sec["worker_bench"])
        self.assertEqual([(r["model"], r["start"], r["compile"]) for r in cold],
                         [("mobilenet_v2", 120.0, 30.0), ("digits", 110.0, 2.0)])

    def test_writes_svgs(self):
        log = self.tmp / "run_all.log"
        log.write_text(sample_log())
        summary = self.tmp / "summary.json"
        summary.write_text(json.dumps([
            {"model": "resnet50", "ort_p50_ms_t1": 72.1, "moss_p50_ms_t1": 89.6, "ratio_t1": 1.24,
             "ort_p50_ms_t2": 52.8, "moss_p50_ms_t2": 72.0, "ratio_t2": 1.36},
            {"model": "bert4", "ort_p50_ms_t1": 11.1, "moss_p50_ms_t1": 5.1, "ratio_t1": 0.46,
             "ort_p50_ms_t2": 15.6, "moss_p50_ms_t2": 11.0, "ratio_t2": 0.71}]))
        out = self.tmp / "img"
        self.assertEqual(plot_results.main(["--log", str(log), "--engine-summary", str(summary),
                                            "--out", str(out)]), 0)
        names = sorted(p.name for p in out.iterdir())
        self.assertEqual(names, ["engine_vs_ort.svg", "keyservice_throughput.svg",
                                 "packer_policies.svg", "worker_cold_start.svg"])
        for p in out.iterdir():
            text = p.read_text()
            self.assertTrue(text.startswith("<?xml"), p)
            self.assertNotIn("<dc:date>", text)  # deterministic: reruns diff cleanly
        first = (out / "packer_policies.svg").read_text()
        plot_results.main(["--log", str(log), "--out", str(out)])
        self.assertEqual((out / "packer_policies.svg").read_text(), first)
