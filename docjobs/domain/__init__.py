"""The signing service's domain as the jobs need it: flows (send, sign, reject, ...) and reminder rules."""

from docjobs.domain.flows import FieldSpec, FlowError, Flows, Metadata, RecipientSpec

__all__ = ["FieldSpec", "FlowError", "Flows", "Metadata", "RecipientSpec"]
