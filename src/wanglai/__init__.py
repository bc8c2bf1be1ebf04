"""Wanglai: messaging, social and wallet platform of an operator and an internet company."""

__version__ = "0.1.0"
