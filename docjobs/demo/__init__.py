"""The demo: a few jobs that show the local provider at work (``docjobs demo``)."""
