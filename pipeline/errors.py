"""The one exception type for bad input or config: its message names the place and the fix.

Bad data never raises: it becomes a reason code on the record. A bug raises whatever it raises.
"""


class PipelineError(Exception):
    """Bad input, bad config or an unreadable file. The CLI prints it and exits 2."""

    exit_code = 2


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived: the run stops, its temporary files are removed, and the CLI
    exits 128 + the signal number (130, 143)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum
