"""Flow control per job type: declared on the actor, honoured by every provider.

``@docjobs.actor("internal.seal-document", concurrency=Concurrency(1, key="documentId"))``
lets one seal of a document run at a time. ``limits`` holds the declarations;
``gate`` honours them in docjobs' workers (local, bullmq) with a ``store`` shared
between them; on Inngest they become the function's own options.
"""

from docjobs.flow.limits import Concurrency, Debounce, Flow, FlowDeclarationError, RateLimit, Throttle

__all__ = ["Concurrency", "Debounce", "Flow", "FlowDeclarationError", "RateLimit", "Throttle"]
