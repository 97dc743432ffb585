"""The report: figures (``bnorder.report.figures``) drawn from the results DataFrames of
:func:`bnorder.load`, one consistent colour per ordering, saved as PNG files."""
