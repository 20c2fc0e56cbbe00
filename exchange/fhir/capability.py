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
                        "create", "update", "delete"]
        resources.append({
            "type": rtype,
            "versioning": "versioned",
            "readHistory": True,
            "updateCreate": False,
            "conditionalCreate": False,
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
    return {
        "token_endpoint": token_url,
        "jwks_uri": jwks_url,
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"],
        "scopes_supported": ["system/*.rs", "system/*.cruds", "system/*.read"],
        "capabilities": ["client-confidential-asymmetric", "permission-v2"],
        "purpose_of_use_supported": ["TREAT", "ETREAT", "HPAYMT", "CAREMGT", "HRESCH"],
    }
