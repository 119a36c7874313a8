"""The decoding benchmark: compression while generating (``rcstat bench decoding``)."""
