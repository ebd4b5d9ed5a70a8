"""Settings for every test in the repository (collected by pytest before any test module)."""

import os
import tempfile

# MindSpore writes `rank_0/om/analyze_fail.ir` into the working directory when a graph fails
# to compile (several tests provoke that on purpose); MS_OM_PATH sends it to a temp folder so
# a test run never leaves files in the checkout. Must be set before MindSpore is imported.
os.environ.setdefault("MS_OM_PATH", os.path.join(tempfile.gettempdir(), "mf-tests-om"))

# mf's own processes run MindSpore with these defaults (mf_parallel/runtime.py: each kernel runs
# inline instead of through a runtime thread); the tests that drive models in-process get the
# same, so they test what users run, and the suite is about a third faster on 2 cores
# (libs/mf-models/tests/test_model_runner.py: 230 -> 152 s).
os.environ.setdefault("MS_DEV_HOST_BLOCKING_RUN", "1")
