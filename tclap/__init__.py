"""T-CLAP: temporal-enhanced CLAP, its data, training and evaluation."""

__version__ = "0.1.0"
