"""The sealing pipeline: fields drawn, rejection stamp, certificate and audit pages, PAdES signature."""
