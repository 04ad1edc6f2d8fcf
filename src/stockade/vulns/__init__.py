"""Vulnerabilities: advisories (OSV, KEV, EPSS), version ranges per ecosystem, matching and ranking."""
