"""The tamper-evident record: the node's signing key, the audit hash chain and its checkpoints."""
