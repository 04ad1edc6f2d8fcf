"""Forensic evidence: capture a container or process into a sealed bundle, and verify one."""
