"""Peer servers written for the benchmark: threaded.py, the origin's thread-per-client design."""
