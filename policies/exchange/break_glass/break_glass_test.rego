package exchange.break_glass_test

import rego.v1

import data.exchange.break_glass
import data.exchange.fixtures_test as fixtures

no_break_glass := {
	"id": "Consent/no-bg", "version": "1", "status": "active", "period": fixtures.no_period,
	"provision": {
		"type": "deny", "actors": [], "actor_kinds": [], "purposes": ["ETREAT"],
		"classes": [], "labels": [], "form": "identified", "period": fixtures.no_period,
		"provisions": [],
	},
}

test_break_glass_with_a_reason_reads_without_consent if {
	d := fixtures.emergency(fixtures.etreat, [], "unconscious on arrival, allergy check")
	d.allow
	"break_glass" in d.reasons
}

test_break_glass_without_a_reason_is_refused if {
	d := fixtures.emergency(fixtures.etreat, [], "  ")
	not d.allow
	"break_glass_needs_reason" in d.reasons
	not fixtures.ask(fixtures.etreat, "read", ["Observation"], []).allow
}

test_break_glass_respects_an_opt_out if {
	d := fixtures.emergency(fixtures.etreat, [no_break_glass], "unconscious on arrival, allergy check")
	not d.allow
	"break_glass_opted_out" in d.reasons
}

test_break_glass_is_not_for_insurers if {
	not fixtures.emergency(object.union(fixtures.insurer, {"purpose": "ETREAT"}), [], "a long enough reason here").allow
}

test_a_reason_is_long_enough_without_its_blanks if {
	asked := fixtures.input_of(fixtures.etreat, "read", ["Observation"], [])
	long_enough := object.union(asked, {"context": {"break_glass_reason": "0123456789"}})
	padded := object.union(asked, {"context": {"break_glass_reason": "   012345678   "}})
	break_glass.reason_given with input as long_enough
	not break_glass.reason_given with input as padded
}

test_break_glass_never_writes if {
	asked := object.union(
		fixtures.input_of(fixtures.etreat, "create", ["Observation"], []),
		{"context": {"break_glass_reason": "unconscious on arrival"}},
	)
	break_glass.types == set() with input as asked
}
