package exchange.reidentification_test

import rego.v1

import data.exchange.fixtures_test as fixtures
import data.exchange.reidentification

# The compliance office's token with the scope re-identification needs beside the trail's.
reidentifier := object.union(fixtures.compliance, {"scopes": [
	{"context": "system", "resource_type": "AuditEvent", "interactions": "rs"},
	{"context": "system", "resource_type": "Patient", "interactions": "r"},
]})

test_a_compliance_office_reidentifies if {
	d := fixtures.ask_unattached(reidentifier, "reidentify", ["Patient"])
	d.allow
	d.reasons == ["reidentification"]
}

test_reidentification_needs_a_scope_that_covers_reading_the_resident if {
	# The trail's token (system/AuditEvent.rs) reads the trail, and re-identifies no one.
	d := fixtures.ask_unattached(fixtures.compliance, "reidentify", ["Patient"])
	not d.allow
	"scope_missing" in d.reasons
	not "reidentification" in d.reasons
	searching_only := object.union(fixtures.compliance, {"scopes": [
		{"context": "system", "resource_type": "Patient", "interactions": "s"},
	]})
	not fixtures.ask_unattached(searching_only, "reidentify", ["Patient"]).allow
	every_type := object.union(fixtures.compliance, {"scopes": [
		{"context": "system", "resource_type": "*", "interactions": "r"},
	]})
	fixtures.ask_unattached(every_type, "reidentify", ["Patient"]).allow
}

test_a_clinic_cannot_reidentify_even_with_consent if {
	d := fixtures.ask(fixtures.clinic_a, "reidentify", ["Patient"], [fixtures.treat_a])
	not d.allow
	not "reidentification" in d.reasons
	asked := fixtures.input_of(fixtures.clinic_a, "reidentify", ["Patient"], [fixtures.treat_a])
	reidentification.types == set() with input as asked
}

test_reidentification_needs_the_compliance_purpose if {
	treating := object.union(reidentifier, {"purpose": "TREAT"})
	not fixtures.ask(treating, "reidentify", ["Patient"], []).allow
}

test_reidentification_is_not_reading if {
	asked := fixtures.input_of(reidentifier, "read", ["Patient"], [])
	reidentification.types == set() with input as asked
}

test_reidentification_turns_back_residents_only if {
	asked := fixtures.input_of(reidentifier, "reidentify", ["Observation"], [])
	reidentification.types == set() with input as asked
}
