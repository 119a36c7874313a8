"""Evaluation: the KV and attribution benchmarks, their tasks, data readers and baselines.

Built on the core (``rcstat.presses``, ``rcstat.kv``, ``rcstat.attribution``); the core never
imports from here.
"""
