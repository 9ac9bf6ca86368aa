"""Symbols, types, line tables and variable locations: what a dump's bytes mean."""
