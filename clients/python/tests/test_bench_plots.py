"""bench/plot_results.py draws the SVG plots from the benchmarks' JSON output: the fixtures in
tests/data/bench are small files in the formats the C++ benches write with --json
(bench/common/json_output.h, bench/packer/policy_json.h) and compare_ort.py's summary.json."""
import importlib.util
import json
import shutil

from support import ROOT, TempDirCase

spec = importlib.util.spec_from_file_location("plot_results", ROOT / "bench" / "plot_results.py")
plot_results = importlib.util.module_from_spec(spec)
spec.loader.exec_module(plot_results)

FIXTURES = ROOT / "clients" / "python" / "tests" / "data" / "bench"
ALL = ["engine_vs_ort.svg", "keyservice_throughput.svg", "packer_policies.svg", "packer_sim.svg",
       "worker_cold_start.svg"]


class PlotResults(TempDirCase):
    def plot(self, indir, *extra):
        out = self.tmp / "img"
        return plot_results.main(["--in", str(indir), "--out", str(out), *extra]), out

    def test_draws_every_plot_from_the_json_files(self):
        rc, out = self.plot(FIXTURES)
        self.assertEqual(rc, 0)
        self.assertEqual(sorted(p.name for p in out.iterdir()), ALL)
        for p in out.iterdir():
            text = p.read_text()
            self.assertTrue(text.startswith("<?xml"), p)
            self.assertNotIn("<dc:date>", text)  # deterministic: reruns diff cleanly
        # the cold-start plot names every phase and every model
        cold = (out / "worker_cold_start.svg").read_text()
        for label in ("process start + attestation", "key fetch", "model fetch", "decrypt",
                      "compile", "inference", "mobilenet_v2", "resnet50"):
            self.assertIn(label, cold)
        first = (out / "packer_sim.svg").read_text()
        self.plot(FIXTURES)
        self.assertEqual((out / "packer_sim.svg").read_text(), first)

    def test_cold_start_segments(self):
        doc = plot_results.load_bench(FIXTURES / "worker_bench.json", "worker_bench")
        seg = plot_results.cold_start_segments(doc["cold_start"][1])
        self.assertEqual([label for label, _ in seg],
                         ["process start + attestation", "key fetch", "model fetch", "decrypt",
                          "compile", "inference", "rest of the first request"])
        self.assertEqual([v for _, v in seg], [110.0, 9.0, 40.0, 90.0, 400.0, 80.0, 281.0])
        # the segments add up to start + first request
        self.assertAlmostEqual(sum(v for _, v in seg), 110.0 + 900.0)

    def test_missing_files_are_named_and_only_present_plots_drawn(self):
        d = self.tmp / "in"
        d.mkdir()
        shutil.copy(FIXTURES / "keyservice_bench.json", d)
        rc, out = self.plot(d)
        self.assertEqual(rc, 0)
        self.assertEqual([p.name for p in out.iterdir()], ["keyservice_throughput.svg"])
        rc, _ = self.plot(self.tmp / "nothing")
        self.assertEqual(rc, 1)  # nothing to draw is a failure, not a silent success

    def test_malformed_input_is_refused(self):
        doc = json.loads((FIXTURES / "worker_bench.json").read_text())
        cases = {
            "not json": "{",
            "another bench's file": json.dumps(dict(doc, bench="keyservice_bench")),
            "another format": json.dumps(dict(doc, format=2)),
            "rows without their fields": json.dumps(dict(doc, cold_start=[{"model": "x"}])),
        }
        for name, text in cases.items():
            d = self.tmp / name.replace(" ", "_").replace("'", "")
            d.mkdir()
            (d / "worker_bench.json").write_text(text)
            with self.subTest(case=name):
                rc, _ = self.plot(d)
                self.assertEqual(rc, 2)
