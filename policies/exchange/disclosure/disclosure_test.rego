package exchange.disclosure_test

import rego.v1

import data.exchange.disclosure
import data.exchange.fixtures_test as fixtures

test_pseudonymized_only_consent_forces_the_form if {
	pseud := fixtures.with_provision(fixtures.treat_a, {"form": "pseudonymized"})
	fixtures.ask(fixtures.clinic_a, "read", ["Observation"], [pseud]).obligations.form == "pseudonymized"
	fixtures.ask(fixtures.clinic_a, "read", ["Observation"], [fixtures.treat_a]).obligations.form == "identified"
}

test_the_hub_gets_the_care_needs_profile if {
	care := fixtures.with_provision(fixtures.treat_a, {"actors": ["Organization/hub"], "purposes": ["CAREMGT"]})
	d := fixtures.ask(fixtures.hub, "search", ["Patient"], [care])
	d.allow
	d.obligations.form == "pseudonymized"
	d.obligations.profile == "care-needs"
}

test_the_directory_is_never_pseudonymized if {
	d := fixtures.ask_unattached(fixtures.hub, "search", ["Organization"])
	d.allow
	d.obligations.profile == "identified"
}

test_research_names_its_own_profile if {
	researcher := object.union(fixtures.hub, {"organization": "Organization/uni", "organization_kind": "research", "purpose": "HRESCH"})
	study := fixtures.with_provision(fixtures.treat_a, {
		"actors": ["Organization/uni"], "purposes": ["HRESCH"], "form": "pseudonymized",
	})
	d := fixtures.ask(researcher, "read", ["Observation"], [study])
	d.allow
	d.obligations.profile == "research"
}

test_people_asking_for_themselves_get_their_record_identified if {
	asked := fixtures.input_of(fixtures.me, "read", ["Observation"], [])
	disclosure.form == "identified" with input as asked
	disclosure.profile == "identified" with input as asked
}

test_a_search_is_judged_on_the_purposes_profile_before_any_resident if {
	d := fixtures.ask_unattached(fixtures.hub, "search", ["Observation"])
	d.obligations.search_profile == "care-needs"
	clinic := fixtures.ask_unattached(fixtures.clinic_a, "search", ["Observation"])
	clinic.obligations.search_profile == "identified"
}
