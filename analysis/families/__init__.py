"""The claim-facing model families.

One protocol (``base.Family``), the built-in families, their runners and JSON documents.
"""
