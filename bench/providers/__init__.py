"""docjobs' providers as the bench runs them."""
