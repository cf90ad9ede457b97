"""The commands' exit codes, the same for every command that moves jobs or follows a run."""

ALL_MOVED = 0  # every job named moved (or the run finished with every job moved)
SOME_NOT_MOVED = 1  # some were skipped, a batch failed, or the run was stopped or failed
BAD_ARGUMENTS = 2  # nothing was done: an argument was not understood
