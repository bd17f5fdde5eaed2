"""The one exception type for bad input or config: its message names the place and the fix.

Bad data never raises: it becomes a reason code on the record. A bug raises whatever it raises.
"""


class PipelineError(Exception):
    """Bad input, bad config or an unreadable file. The CLI prints it and exits 2."""

    exit_code = 2
