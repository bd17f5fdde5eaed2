"""Imported only by the forkserver of the local engine, before it forks any worker: SIGINT is
ignored from a worker's first instruction, so Ctrl-C (which reaches the whole process group)
stops the run through the parent alone, without a traceback from a worker still starting.
Never import it in the parent process: Ctrl-C would no longer stop the run."""

import signal

signal.signal(signal.SIGINT, signal.SIG_IGN)
