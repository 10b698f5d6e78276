"""Benchmarks of `ocm serve`: each figure is printed next to a baseline measured in the
same run on the same machine (see bench/README.md)."""
