"""The project's benchmarks: ``python -m benchmarks SUITE [ARGS]`` from the repository root.

Each suite is a module here with a ``main(argv)``; every suite records its results through
:mod:`benchmarks.harness` as JSON lines in ``benchmarks/results/SUITE.jsonl``, and
``python -m benchmarks tables`` writes the documentation's tables from those records.
"""
