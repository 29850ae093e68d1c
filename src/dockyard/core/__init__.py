"""The registry's rules. Pure Python: never speaks HTTP, never writes SQL, never opens files."""
