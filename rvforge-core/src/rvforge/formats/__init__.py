"""Archive and image formats, read and written by rvforge itself: tar, cpio newc, ext4,
host directories, compression and content sniffing. They know trees, not plugins."""
