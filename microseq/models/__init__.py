"""Models built from microseq layers and plain counts, shared by the lessons."""
