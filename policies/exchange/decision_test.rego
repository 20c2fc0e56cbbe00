package exchange_test

import rego.v1

import data.exchange.fixtures_test as fixtures

test_decision_has_its_published_shape if {
	d := fixtures.ask(fixtures.clinic_a, "read", ["Observation"], [fixtures.treat_a])
	object.keys(d) == {"allow", "reasons", "consents", "obligations"}
	object.keys(d.obligations) == {"form", "profile", "search_profile", "types", "withhold_labels", "categories"}
}

test_other_clinic_denied if {
	d := fixtures.ask(fixtures.clinic_b, "read", ["Observation"], [fixtures.treat_a])
	not d.allow
	"not_consented" in d.reasons
	d.consents == []
}

test_no_consent_denied if {
	d := fixtures.ask(fixtures.clinic_a, "search", ["Observation"], [])
	not d.allow
	"no_active_consent" in d.reasons
}

test_a_registration_is_a_basis_of_its_own if {
	d := fixtures.ask(fixtures.clinic_b, "create", ["Patient"], [])
	not "no_active_consent" in d.reasons
	not "not_consented" in d.reasons
}

test_a_type_allowed_by_any_concern_is_allowed if {
	d := fixtures.ask(fixtures.me, "read", ["Observation", "AuditEvent"], [])
	object.keys(d.obligations.types) == {"Observation", "AuditEvent"}
}

test_reasons_are_sorted_and_given_once if {
	d := fixtures.ask(fixtures.insurer, "read", ["Claim", "Observation", "Patient"], [fixtures.pay_insurer])
	d.reasons == ["consent_permit", "purpose_excludes_type"]
}

test_refusals_are_given_only_where_something_was_refused if {
	bogus := object.union(fixtures.clinic_a, {"purpose": "BOGUS"})
	directory_only := fixtures.ask_unattached(bogus, "search", ["Organization"])
	directory_only.allow
	directory_only.reasons == ["directory"]
	refused := fixtures.ask_unattached(bogus, "search", ["Organization", "Observation"])
	"unknown_purpose" in refused.reasons
}
