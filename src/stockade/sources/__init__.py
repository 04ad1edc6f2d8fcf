"""Event sources: recordings, Falco JSON, Tetragon, Kubernetes audit."""
