package exchange.resident_test

import rego.v1

import data.exchange.fixtures_test as fixtures
import data.exchange.resident

test_resident_reads_own_record_without_consent if {
	d := fixtures.ask(fixtures.me, "read", ["Observation"], [])
	d.allow
	d.obligations.withhold_labels == []
	"resident_self" in d.reasons
}

test_resident_cannot_read_another if {
	other := {"kind": "resident", "resident": "p2", "scopes": []}
	d := fixtures.ask(other, "read", ["Observation"], [])
	not d.allow
	"other_resident" in d.reasons
}

test_resident_writes_only_consents if {
	fixtures.ask(fixtures.me, "create", ["Consent"], []).allow
	not fixtures.ask(fixtures.me, "create", ["Observation"], []).allow
}

test_of_a_mixed_write_only_the_resident_writable_types_are_allowed if {
	asked := fixtures.input_of(fixtures.me, "create", ["Consent", "Observation"], [])
	resident.types == {"Consent"} with input as asked
}

test_a_request_about_no_resident_is_not_self_access if {
	asked := object.union(fixtures.input_of(fixtures.me, "read", ["Observation"], []), {"resident": null})
	not resident.self_access with input as asked
}
