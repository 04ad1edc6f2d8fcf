"""The admission webhook: AdmissionPolicy documents, their evaluation, and the HTTPS server."""
