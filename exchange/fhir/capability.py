"""The CapabilityStatement and the SMART configuration document."""

from typing import Any

from exchange.fhir.release import FHIR_VERSION
from exchange.fhir.search_params import PARAMS, RESIDENT_TYPES, SEARCHABLE_KINDS

SMART_OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"


def capability_statement(fhir_base: str, token_url: str, software_version: str,
                         date: str) -> dict[str, Any]:
    resources = []
    for rtype, params in sorted(PARAMS.items()):
        interactions = ["read", "vread", "search-type", "history-instance", "history-type",
                        "create", "update", "patch", "delete"]
        resources.append({
            "type": rtype,
            "versioning": "versioned-update",
            "readHistory": True,
            "updateCreate": False,
            "conditionalCreate": True,
            "conditionalRead": "full-support",
            "conditionalUpdate": True,
            "conditionalDelete": "single",
            "interaction": [{"code": code} for code in interactions],
            "searchParam": [
                {"name": "_id", "type": "token"},
                {"name": "_lastUpdated", "type": "date"},
                *({"name": name, "type": p.kind} for name, p in sorted(params.items())
                  if p.kind in SEARCHABLE_KINDS),
            ],
            "searchInclude": [f"{rtype}:{n}" for n, p in sorted(params.items())
                              if p.kind == "reference"],
            **({"operation": [{"name": "everything",
                               "definition": "http://hl7.org/fhir/OperationDefinition/"
                                             "Patient-everything"}]}
               if rtype == "Patient" else {}),
        })
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": date,
        "kind": "instance",
        "software": {"name": "Community Health Exchange", "version": software_version},
        "implementation": {"description": "Consent-driven community health data exchange",
                           "url": fhir_base},
        "fhirVersion": FHIR_VERSION,
        "format": ["application/fhir+json", "json"],
        "rest": [{
            "mode": "server",
            "security": {
                "service": [{"coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                    "code": "SMART-on-FHIR"}]}],
                "extension": [{"url": SMART_OAUTH_URIS,
                               "extension": [{"url": "token", "valueUri": token_url}]}],
                "description": "SMART Backend Services (client_credentials, private_key_jwt)."
                               " Residents' data is disclosed only under their consent.",
            },
            "resource": resources,
            "interaction": [{"code": "transaction"}, {"code": "batch"}],
            "compartment": ["http://hl7.org/fhir/CompartmentDefinition/patient"]
            if RESIDENT_TYPES else [],
        }],
    }


def smart_configuration(token_url: str, jwks_url: str) -> dict[str, Any]:
    """SMART App Launch 2 discovery for a server that offers Backend Services only.

    What SMART requires of every server (``token_endpoint``, ``grant_types_supported``,
    ``capabilities``) and what Backend Services clients look for (private_key_jwt with
    RS384/ES384, system scopes). Nothing about launches, authorization codes, PKCE or
    OpenID Connect is listed, since none is offered: ``authorization_endpoint``,
    ``code_challenge_methods_supported`` and ``issuer`` are the authorization-code and
    OpenID flows' fields, and naming them would send a client down a road that is not
    there. ``jwks_uri`` publishes the key the exchange signs access tokens with.
    """
    return {
        "token_endpoint": token_url,
        "jwks_uri": jwks_url,
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"],
        "scopes_supported": ["system/*.rs", "system/*.cruds", "system/*.read"],
        # v2 scopes (system/Observation.rs) and v1 ones (system/Observation.read) alike.
        "capabilities": ["client-confidential-asymmetric", "permission-v1", "permission-v2"],
        # The exchange's own: a client registered for one purpose need not send it.
        "purpose_of_use_supported": ["TREAT", "ETREAT", "HPAYMT", "CAREMGT", "HRESCH"],
    }
