"""Local stand-ins for the web services the data pipeline talks to (tests and benchmarks only)."""
