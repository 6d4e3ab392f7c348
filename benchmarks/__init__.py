"""Benchmarks for airflow-provider-immuta: ``make bench`` (``python -m benchmarks``).

Every figure is measured in the same run as the baseline it is compared with, and reported as a
ratio, because these machines are noisy.
"""
