package exchange.request_test

import rego.v1

import data.exchange.fixtures_test as fixtures
import data.exchange.request

test_unknown_requester_denied if {
	d := fixtures.ask({"kind": "robot", "scopes": []}, "read", ["Observation"], [fixtures.treat_a])
	not d.allow
	"unknown_requester" in d.reasons
}

test_scope_limits_types if {
	narrow := object.union(fixtures.clinic_a, {"scopes": [{"context": "system", "resource_type": "Patient", "interactions": "rs"}]})
	d := fixtures.ask(narrow, "read", ["Patient", "Observation"], [fixtures.treat_a])
	d.allow
	d.obligations.types.Patient
	not d.obligations.types.Observation
	"scope_missing" in d.reasons
}

test_a_scope_covers_an_action_by_its_letter if {
	reader := object.union(fixtures.clinic_a, {"scopes": [{"context": "system", "resource_type": "*", "interactions": "rs"}]})
	searching := fixtures.input_of(reader, "search", [], [])
	creating := fixtures.input_of(reader, "create", [], [])
	reidentifying := fixtures.input_of(reader, "reidentify", [], [])
	request.scope_allows("Observation") with input as searching
	not request.scope_allows("Observation") with input as creating
	request.scope_allows("Patient") with input as reidentifying
}

test_a_period_holds_from_its_start_until_before_its_end if {
	period := {"start": 10, "end": 20}
	request.within(period) with input as {"now": 10}
	request.within(period) with input as {"now": 19}
	not request.within(period) with input as {"now": 20}
	not request.within(period) with input as {"now": 9}
	request.within(fixtures.no_period) with input as {"now": 0}
}

test_writing_is_create_update_or_delete if {
	request.writing with input as {"action": "update"}
	not request.writing with input as {"action": "search"}
}
