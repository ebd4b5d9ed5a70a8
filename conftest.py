"""Settings for every test in the repository (collected by pytest before any test module)."""

import os
import tempfile

# MindSpore writes `rank_0/om/analyze_fail.ir` into the working directory when a graph fails
# to compile (several tests provoke that on purpose); MS_OM_PATH sends it to a temp folder so
# a test run never leaves files in the checkout. Must be set before MindSpore is imported.
os.environ.setdefault("MS_OM_PATH", os.path.join(tempfile.gettempdir(), "mf-tests-om"))
