"""rvforge-core's own components, each module a plugin registered like any other."""
