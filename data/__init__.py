"""Bundled datasets and claims files (package data)."""
