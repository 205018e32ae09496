"""Fetching from mirrors: the shared HTTP session and verified, cached downloads."""
