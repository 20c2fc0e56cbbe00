package exchange.data_classes_test

import rego.v1

import data.exchange.data_classes
import data.exchange.fixtures_test as fixtures

test_category_permit_opens_only_that_category if {
	vitals_only := fixtures.with_provision(fixtures.treat_a, {"categories": [fixtures.vitals]})
	d := fixtures.ask(fixtures.clinic_a, "search", ["Observation", "Condition"], [vitals_only])
	d.allow
	d.obligations.types.Observation
	not d.obligations.types.Condition
	d.obligations.categories.Observation == {"grants": [{"only": [fixtures.vitals], "except": []}], "except": []}
}

test_whole_permit_has_no_category_rule if {
	d := fixtures.ask(fixtures.clinic_a, "read", ["Observation"], [fixtures.treat_a])
	d.obligations.categories == {}
}

test_nested_category_deny_excepts_it if {
	no_labs := fixtures.with_provision(fixtures.treat_a, {"provisions": [fixtures.deny_of([fixtures.labs])]})
	d := fixtures.ask(fixtures.clinic_a, "read", ["Observation", "Condition"], [no_labs])
	d.obligations.types.Observation
	d.obligations.categories.Observation == {"grants": [{"only": null, "except": [fixtures.labs]}], "except": []}
	not d.obligations.categories.Condition
}

test_category_opt_out_applies_to_every_permit if {
	opt_out := {
		"id": "Consent/c9", "version": "1", "status": "active", "period": fixtures.no_period,
		"provision": fixtures.deny_of([fixtures.labs]),
	}
	d := fixtures.ask(fixtures.clinic_a, "read", ["Observation"], [fixtures.treat_a, opt_out])
	d.allow
	d.obligations.categories.Observation.except == [fixtures.labs]
}

test_unknown_category_system_opens_nothing if {
	odd := fixtures.with_provision(fixtures.treat_a, {"categories": [{"system": "urn:unknown", "code": "x"}]})
	not fixtures.ask(fixtures.clinic_a, "read", ["Observation"], [odd]).allow
}

test_another_whole_permit_lifts_the_category_limit if {
	vitals_only := fixtures.with_provision(fixtures.treat_a, {"categories": [fixtures.vitals]})
	everything := object.union(fixtures.treat_a, {"id": "Consent/c3"})
	d := fixtures.ask(fixtures.clinic_a, "read", ["Observation"], [vitals_only, everything])
	not d.obligations.categories.Observation
}

test_break_glass_grants_the_whole_type_but_keeps_a_category_opt_out if {
	opt_out := {
		"id": "Consent/c9", "version": "1", "status": "active", "period": fixtures.no_period,
		"provision": fixtures.deny_of([fixtures.labs]),
	}
	asked := object.union(
		fixtures.input_of(fixtures.etreat, "read", ["Observation"], [opt_out]),
		{"context": {"break_glass_reason": "unconscious on arrival"}},
	)
	rules := data_classes.rules with input as asked
	rules == {"Observation": {"grants": [{"only": null, "except": []}], "except": [fixtures.labs]}}
}
