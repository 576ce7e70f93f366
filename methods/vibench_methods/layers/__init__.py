"""Shared building blocks of vibench methods (layers); import each from its own module."""
