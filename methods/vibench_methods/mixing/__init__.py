"""Shared building blocks of vibench methods (mixing); import each from its own module."""
