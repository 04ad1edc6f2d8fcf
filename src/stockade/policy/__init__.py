"""Policy as code: WorkloadPolicy documents, their evaluation, dry runs and exports."""
