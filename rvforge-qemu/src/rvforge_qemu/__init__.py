"""rvforge-qemu: an rvforge plugin distribution."""
