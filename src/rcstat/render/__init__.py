"""Rendering results: self-contained HTML pages, plain-text tables and plots (the render layer).

Render reads results (core objects or their JSON forms) and never runs a model or a benchmark.
"""
