"""Reading and driving job directories, for the `mf jobs` commands and the terminal UI.

Light on purpose (no MindSpore, no numpy, no Textual): `mf tui` shows its first screen from
these alone. The job directory's layout and record schema are the seam mf-train writes (see
libs/mf-train's jobdir); this package reads it and never writes it, except the `stopped` state
that `stop_job` records when the launcher died without saying so.
"""

from mf_tui.jobs.control import JobError, find_jobs, last_checkpoint, require_job, stop_job
from mf_tui.jobs.tail import LineTailer
from mf_tui.jobs.view import JobSnapshot, JobView, RankView, is_job_dir

__all__ = ["JobError", "JobSnapshot", "JobView", "LineTailer", "RankView", "find_jobs",
           "is_job_dir", "last_checkpoint", "require_job", "stop_job"]
