"""Clusters and their identifiers: constrained clustering and stable CCI assignment (pure logic)."""
