"""Reports of a run, built from its typed summary (`summary.RunSummary`): report.json today.

`summary` holds the counts (`Tally`) and everything else a report shows; `json_report` turns
it into report.json. Pages for people (report.md, report.html) are built beside it from the
same summary.
"""
