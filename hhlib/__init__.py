"""hhlib: HybridHash (Hybrid Convolutional and Self-Attention Deep Hashing, ICMR 2024, arXiv 2405.07524).

The package re-exports its public API here and holds nothing else.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
