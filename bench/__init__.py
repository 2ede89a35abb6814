"""``make bench``: docjobs' local provider against Dramatiq's stock RedisBroker, one machine, one run."""
