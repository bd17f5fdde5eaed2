"""Imported only by the forkserver of the local engine, after the pipeline: the tokenizer
encodings a run will count with, loaded once there, so that every worker forked from it starts
with them (`tokens.get_encoding` is cached per process) instead of loading its own: about a
quarter to half a second of CPU and 86 MiB per worker for o200k_base, whose pages the workers
then share. `local.prestart` names them, separated by commas, in the environment variable
`PRELOAD_ENCODINGS_ENV` while it starts the forkserver; a forkserver started without it loads
nothing. An encoding that cannot be loaded here is left for the worker, which loads it, or
reports the error, as before."""

import os

from pipeline import tokens
from pipeline.engine.local import PRELOAD_ENCODINGS_ENV

for _name in filter(None, os.environ.get(PRELOAD_ENCODINGS_ENV, "").split(",")):
    try:
        tokens.get_encoding(_name)
    except Exception:
        continue
