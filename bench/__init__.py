"""Benchmarks that print figures; nothing here is a test and nothing is asserted."""
