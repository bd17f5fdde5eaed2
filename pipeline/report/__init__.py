"""Reports of a run: report.json, report.md and report.html (`files.write_reports`).

`summary` holds the counts (`Tally`) and everything else a run knows (`RunSummary`); `stats`
the token and message distributions; `json_report` turns the summary into report.json (its
schema: `report.schema.json`, docs/report.md). `markdown` and `html` render the pages for
people from the report.json document, so they say exactly what it says.
"""
