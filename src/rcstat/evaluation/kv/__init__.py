"""The KV-cache benchmark: samples, built-in tasks and their haystack, runs, summaries."""
