"""Figures of the book, one submodule per topic; every function returns its figure."""
