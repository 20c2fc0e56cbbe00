package exchange.sensitive_test

import rego.v1

import data.exchange.fixtures_test as fixtures
import data.exchange.sensitive

mental := fixtures.with_provision(fixtures.treat_a, {"labels": [fixtures.psy]})

test_sensitive_labels_withheld_from_clients if {
	d := fixtures.ask(fixtures.clinic_a, "read", ["Observation"], [fixtures.treat_a])
	count(d.obligations.withhold_labels) > 0
}

test_general_permit_does_not_open_a_sensitive_class if {
	d := fixtures.ask(fixtures.clinic_a, "read", ["Condition"], [fixtures.treat_a])
	fixtures.psy in d.obligations.withhold_labels
}

test_explicit_provision_opens_a_sensitive_class if {
	d := fixtures.ask(fixtures.clinic_a, "read", ["Condition"], [mental])
	not fixtures.psy in d.obligations.withhold_labels
	count(d.obligations.withhold_labels) > 0
}

test_explicit_label_for_another_clinic_opens_nothing if {
	other_clinics_consent := fixtures.with_provision(mental, {"actors": ["Organization/clinic-b"]})
	d := fixtures.ask(fixtures.clinic_a, "read", ["Condition"], [fixtures.treat_a, other_clinics_consent])
	fixtures.psy in d.obligations.withhold_labels
}

test_a_permit_naming_a_label_opens_it_for_its_actor_and_purpose if {
	treating := fixtures.input_of(fixtures.clinic_a, "read", ["Condition"], [mental])
	in_emergency := fixtures.input_of(fixtures.etreat, "read", ["Condition"], [mental])
	sensitive.opened == {[fixtures.psy.system, fixtures.psy.code]} with input as treating
	sensitive.opened == set() with input as in_emergency
}

test_the_resident_sees_every_label if {
	asked := fixtures.input_of(fixtures.me, "read", ["Condition"], [])
	sensitive.withheld == [] with input as asked
}
