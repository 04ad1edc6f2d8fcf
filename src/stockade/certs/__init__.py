"""TLS certificates: found on disk (PEM, DER, PKCS#12, Java keystores) and served on listening ports."""
