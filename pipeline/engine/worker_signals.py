"""Imported only by the forkserver of the local engine, before it forks any worker: SIGINT is
ignored from a worker's first instruction, so Ctrl-C (which reaches the whole process group)
stops the run through the parent alone, without a traceback from a worker still starting.
The forkserver starts with SIGINT blocked (`local._start_forkserver`), so it cannot be
interrupted while importing; once SIGINT is ignored here it is unblocked again.
Never import it in the parent process: Ctrl-C would no longer stop the run."""

import signal

signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
