"""The attribution benchmark: VeriGran and QuoteSum readers, methods and baselines, runs."""
