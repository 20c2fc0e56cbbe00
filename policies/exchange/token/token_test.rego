package exchange.token_test

import rego.v1

import data.exchange.token

clinic := {
	"active": true,
	"purposes": ["TREAT"],
	"scopes": [{"context": "system", "resource_type": "*", "interactions": "rs"}],
}

obs_rs := {"text": "system/Observation.rs", "context": "system", "resource_type": "Observation", "interactions": "rs"}

obs_c := {"text": "system/Observation.c", "context": "system", "resource_type": "Observation", "interactions": "c"}

test_registered_purpose_and_scope_granted if {
	g := token.grant with input as {"client": clinic, "purpose": "TREAT", "requested_scopes": [obs_rs]}
	g.allow
	g.scopes == ["system/Observation.rs"]
}

test_unregistered_purpose_refused if {
	g := token.grant with input as {"client": clinic, "purpose": "HPAYMT", "requested_scopes": [obs_rs]}
	not g.allow
	"purpose_not_registered" in g.reasons
}

test_scope_beyond_registration_not_granted if {
	g := token.grant with input as {"client": clinic, "purpose": "TREAT", "requested_scopes": [obs_c]}
	not g.allow
	g.scopes == []
}

test_only_covered_scopes_granted if {
	g := token.grant with input as {"client": clinic, "purpose": "TREAT", "requested_scopes": [obs_rs, obs_c]}
	g.allow
	g.scopes == ["system/Observation.rs"]
}

test_inactive_client_refused if {
	inactive := object.union(clinic, {"active": false})
	g := token.grant with input as {"client": inactive, "purpose": "TREAT", "requested_scopes": [obs_rs]}
	not g.allow
}

test_unknown_purpose_refused_even_if_registered if {
	odd := object.union(clinic, {"purposes": ["MADEUP"]})
	g := token.grant with input as {"client": odd, "purpose": "MADEUP", "requested_scopes": [obs_rs]}
	not g.allow
}
