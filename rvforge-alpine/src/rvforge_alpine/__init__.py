"""rvforge-alpine: an rvforge plugin distribution."""
