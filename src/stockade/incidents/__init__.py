"""Incidents: alerts grouped per workload and attack chain, scored, with a timeline; response playbooks."""
