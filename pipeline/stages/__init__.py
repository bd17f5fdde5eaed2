"""Batch stages, one module each: a frozen `<Name>Config` dataclass and one pure function.

`fn(batch, cfg) -> (batch, changes)` marks the rows it rejects with a reason code
(`pipeline.records.drop_where`), attaches warnings (`pipeline.records.warn`), and returns the
named counts of what it changed; it never removes rows, reads or writes files, or prints. The
runner gives it only the records not yet rejected, and counts what went in and out. Each
module registers its stage with `pipeline.registry.register`; dataset stages live in
`pipeline/dataset/`.
"""
