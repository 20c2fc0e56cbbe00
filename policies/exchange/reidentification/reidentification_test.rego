package exchange.reidentification_test

import rego.v1

import data.exchange.fixtures_test as fixtures
import data.exchange.reidentification

test_a_compliance_office_reidentifies if {
	d := fixtures.ask(fixtures.compliance, "reidentify", ["Patient"], [])
	d.allow
	d.reasons == ["reidentification"]
}

test_a_clinic_cannot_reidentify_even_with_consent if {
	d := fixtures.ask(fixtures.clinic_a, "reidentify", ["Patient"], [fixtures.treat_a])
	not d.allow
	not "reidentification" in d.reasons
	asked := fixtures.input_of(fixtures.clinic_a, "reidentify", ["Patient"], [fixtures.treat_a])
	reidentification.types == set() with input as asked
}

test_reidentification_needs_the_compliance_purpose if {
	treating := object.union(fixtures.compliance, {"purpose": "TREAT"})
	not fixtures.ask(treating, "reidentify", ["Patient"], []).allow
}

test_reidentification_is_not_reading if {
	asked := fixtures.input_of(fixtures.compliance, "read", ["Patient"], [])
	reidentification.types == set() with input as asked
}
