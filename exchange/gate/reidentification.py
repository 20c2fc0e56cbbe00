"""Re-identification: the resident behind a token of one recipient's pseudonymized
disclosure. Only the exchange can do it, only for oversight, decided and recorded."""

from typing import Any

import orjson
from cryptography.exceptions import InvalidTag

from exchange.errors import Forbidden, InvalidRequest, NotFound
from exchange.fhir.search import parse_search
from exchange.gate.context import Disclosure, RequestContext
from exchange.gate.road import Road
from exchange.identity.model import Identity
from exchange.ports import KeyProvider
from exchange.privacy.disclosure import domain_keys, domain_of
from exchange.privacy.methods import reveal


class Reidentification:
    def __init__(self, road: Road, keys: KeyProvider) -> None:
        self._road = road
        self._keys = keys

    def reidentify(self, ctx: RequestContext, who: Identity, request: Any) -> Disclosure:
        """The resident behind a re-identification token of one recipient's pseudonymized
        disclosure: an exchange-side act, decided by policy and recorded."""
        if not isinstance(request, dict) or not all(
                isinstance(request.get(k), str) for k in ("organization", "purpose", "token")):
            raise InvalidRequest("Give organization, purpose and token.")
        domain = domain_of(request["organization"], request["purpose"])
        with self._road.recorder.recording(ctx, who, "reidentify", {"type": "Patient",
                                                          "domain": domain}) as draft:
            self._road.deciding.require(
                draft, who, "reidentify", "Patient", None,
                Forbidden("Re-identification is open to compliance officers only, with a "
                          "token scoped to read residents (system/Patient.r)."))
            _, siv_key = domain_keys(self._keys, domain)
            try:
                value = reveal(siv_key, "Patient.identifier.value", request["token"])
            except (ValueError, InvalidTag):
                raise InvalidRequest("The token was not issued in that domain.") from None
            query = parse_search("Patient", [("identifier", value)])
            _, rows = self._road.repository.search(query, None)
            if len(rows) != 1:
                raise NotFound("No resident holds that identifier now.")
            resident = str(rows[0].patient_id)
            draft.residents.add(resident)
            body = {"resident": resident, "domain": domain}
            return Disclosure(200, orjson.dumps(body), {"Content-Type": "application/json"})
