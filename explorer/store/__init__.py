"""Where results live: the atomic, checksummed cache and the project's folders."""
