"""Vulnerability scanning (issue 15): OSV advisories imported from export files into the
metadata database, matched against the packages found in an image with each
ecosystem's version rules, findings stored per manifest and pushed as a report
referrer, and the vulnerability pull policy that refuses images at or above a
severity."""
