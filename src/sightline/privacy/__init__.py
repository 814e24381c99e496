"""Privacy in the data path: consent, rotating salts, export, erasure and audit."""
