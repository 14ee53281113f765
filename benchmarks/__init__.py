"""Benchmarks: the data layer against raw botocore and plain PynamoDB, side by side.

Run them with ``make bench`` (or ``.venv/bin/python -m benchmarks``). Each scenario runs
every contender in the same process, on the same engine (dynalite in its own process),
through the same loopback latency proxy (a `FaultProxy` in a process of its own), over
the same data, and reports medians and ratios. The results land in
``benchmarks/results.json``, ``docs/benchmarks.svg`` and ``docs/benchmarks.md``.
"""
