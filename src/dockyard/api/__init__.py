"""HTTP surfaces: routing, request parsing, response rendering. Thin: no SQL, no file
paths, no registry rules; each handler calls one core operation."""
