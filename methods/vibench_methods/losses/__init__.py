"""Shared building blocks of vibench methods (losses); import each from its own module."""
