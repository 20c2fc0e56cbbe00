"""The gate's public interface: what routes, pages and the command line may use.

Everything else in this package is the road's inside; the import contracts keep it so.
"""

from exchange.gate.context import Disclosure, RequestContext, request_id, was_recorded
from exchange.gate.gate import Gate, GateParts
from exchange.gate.preference import as_preferred, handling_lenient
from exchange.gate.reads import ReadConditions
from exchange.gate.tokens import TokenAnswer, TokenRequest

__all__ = ["Disclosure", "Gate", "GateParts", "ReadConditions", "RequestContext",
           "TokenAnswer", "TokenRequest", "as_preferred", "handling_lenient", "request_id",
           "was_recorded"]
