"""Blob stores: content-addressed bytes behind one small interface. Knows nothing of
repositories, tags, users or databases."""
