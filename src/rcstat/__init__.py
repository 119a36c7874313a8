"""rcstat: Relative Contextualization statistics from attention logits (RCStat, arXiv 2506.19549).

``rcstat.stats`` holds the math (SPEC §2), ``rcstat.models`` the model plumbing and the logit
engine (SPEC §1), ``rcstat.kv`` KV-cache compression (SPEC §3), ``rcstat.cli`` the command line.
"""

__version__ = "0.1.0"
