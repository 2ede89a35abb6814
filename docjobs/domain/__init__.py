"""The signing service's domain as the jobs need it: flows (send, sign, reject, ...) and reminder rules."""

from docjobs.domain.flows import Flows
from docjobs.domain.specs import FieldSpec, FlowError, Metadata, RecipientSpec

__all__ = ["FieldSpec", "FlowError", "Flows", "Metadata", "RecipientSpec"]
