"""rvforge-debootstrap: an rvforge plugin distribution."""
