"""Config-side modules must not import MindSpore (it costs ~2 s and `mf --help` touches them)."""

from __future__ import annotations

import subprocess
import sys


def test_config_modules_do_not_import_mindspore():
    code = (
        "import sys\n"
        "import mf_train, mf_train.run_yaml, mf_train.training_args, mf_train.lr_schedule\n"
        "import mf_train.metrics, mf_train.checkpoint, mf_train.jobdir, mf_train.steplog\n"
        "import mf_train.data, mf_train.resolve, mf_train.plan, mf_train.run_data\n"
        # the Trainer and the job runner load MindSpore only when they build or train
        "import mf_train.trainer, mf_train.jobs, mf_train.callbacks, mf_train.loss_scale\n"
        "import mf_train.evaluation, mf_train.model_setup, mf_train.optim\n"
        "import mf_train.distributed, mf_train.session, mf_train.build, mf_train.outputs\n"
        "import mf_train.launch, mf_train.supervisor, mf_train.sharded\n"
        "import mf_parallel.cluster, mf_parallel.rendezvous, mf_parallel.shards\n"
        "import mf_parallel.ms_strategy\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('mindspore', 'torch'))\n"
        "print(','.join(heavy))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == ""
