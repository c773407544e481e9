"""How a run is reported: tables, RESULTS.md, plots, and the documentation's view of them."""
