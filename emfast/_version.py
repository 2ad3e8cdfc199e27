"""emfast's version: one leaf module, so that any module can name it without importing
the package (which imports every module)."""

__version__ = "0.1.0"
