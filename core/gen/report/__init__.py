"""``gen report``: one self-contained HTML file of one or several runs: their curves, evaluations,
``gen eval`` sweeps, sample grids, recipes and provenance. Read (`gen.report.run_logs`), turned into
charts and tables (`gen.report.training`, `gen.report.sweeps`, `gen.report.recipes`), drawn and written
as a page (`gen.report.page`, `gen.report.write`)."""
