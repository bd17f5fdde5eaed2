"""ftprep: prepare, convert and gate LLM fine-tuning data; every record accounted for."""

__version__ = "0.1.0"
