"""Benchmarks of raycache against raw Ray on the same machine, run by ``make bench``.

Every figure is measured against a raw-Ray baseline in the same run, the two interleaved
round by round so that noise on a shared machine hits both alike.
"""
