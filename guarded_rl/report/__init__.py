"""Compliance reports built from a verified audit log (frameworks, evidence, Markdown, HTML)."""
