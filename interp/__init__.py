"""interp: cross-lingual factual recall, training regimes and language specialization.

Importing the package is cheap: heavy libraries (torch, transformers, ...) load only in the
submodules that need them.
"""

__version__ = "0.1.0"
