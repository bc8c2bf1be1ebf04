"""Wanglai: messaging, social and wallet platform run by an operator and an internet company together."""

__version__ = "0.1.0"
