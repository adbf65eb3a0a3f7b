#!/usr/bin/python3
"""Runs the Python client's tests (unittest) and prints one summary line:
``python tests [PATTERN]: N run, P passed, F failed, E errors, S skipped``. Exit 1 on any failure
or error, so ctest (and `make test`) fail with it; 77 when every test was skipped (ctest's
SKIP_RETURN_CODE: it lists the suite as skipped, the reason is in the output).
    run_tests.py [test_*.py pattern]"""
import sys
import unittest
from pathlib import Path

here = Path(__file__).resolve().parent
pattern = sys.argv[1] if len(sys.argv) > 1 else "test_*.py"
suite = unittest.defaultTestLoader.discover(str(here), pattern=pattern, top_level_dir=str(here))
result = unittest.TextTestRunner(verbosity=2).run(suite)
bad = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
passed = result.testsRun - bad - len(result.skipped)
print(f"python tests [{pattern}]: {result.testsRun} run, {passed} passed, "
      f"{len(result.failures)} failed, {len(result.errors)} errors, {len(result.skipped)} skipped")
if bad or result.testsRun == 0:
    sys.exit(1)
sys.exit(77 if len(result.skipped) == result.testsRun else 0)
