"""Named exit codes of the `mf` command line."""

EXIT_OK = 0
EXIT_RUNTIME = 1  # the job started and failed (I/O, a MindSpore failure, a crashed rank)
EXIT_USAGE = 2  # the request was wrong: a bad option, config value, path or layout
