package exchange.held_test

import rego.v1

import data.exchange.fixtures_test as fixtures

# The decision on a record of no resident held for `holder`.
held_ask(who, action, types, holder) := d if {
	asked := object.union(fixtures.input_of(who, action, types, []), {"resident": null, "holder": holder})
	d := data.exchange.decision with input as asked
}

test_the_holders_clients_read_search_and_write_it_whole if {
	every action in ["read", "search", "create", "update", "delete"] {
		d := held_ask(fixtures.clinic_a, action, ["SupplyRequest"], "Organization/clinic-a")
		d.allow
		"held_by_requester" in d.reasons
		d.obligations.types.SupplyRequest == ["*"]
		d.obligations.withhold_labels == []
		d.obligations.profile == "identified"
	}
}

test_another_organization_gets_nothing if {
	d := held_ask(fixtures.clinic_b, "read", ["SupplyRequest"], "Organization/clinic-a")
	not d.allow
	not "held_by_requester" in d.reasons
	w := held_ask(fixtures.clinic_b, "update", ["SupplyRequest"], "Organization/clinic-a")
	not w.allow
}

test_residents_and_proxies_hold_nothing if {
	not held_ask(fixtures.me, "read", ["SupplyRequest"], "Organization/clinic-a").allow
	reader := fixtures.proxy(["read"], fixtures.no_period)
	not held_ask(reader, "read", ["SupplyRequest"], "Organization/clinic-a").allow
}

test_no_holder_opens_nothing if {
	not fixtures.ask_unattached(fixtures.clinic_a, "read", ["SupplyRequest"]).allow
	not held_ask(fixtures.clinic_a, "read", ["SupplyRequest"], null).allow
}

test_a_scope_and_the_purposes_actions_still_bind if {
	# the insurer's token reads and searches only
	not held_ask(fixtures.insurer, "create", ["Invoice"], "Organization/insurer").allow
	held_ask(fixtures.insurer, "read", ["Invoice"], "Organization/insurer").allow
	narrow := object.union(fixtures.clinic_a, {"scopes": [{"context": "system", "resource_type": "Observation", "interactions": "rs"}]})
	not held_ask(narrow, "read", ["SupplyRequest"], "Organization/clinic-a").allow
}

test_the_directory_is_never_held if {
	not held_ask(fixtures.clinic_a, "create", ["Organization"], "Organization/clinic-a").allow
}

test_a_resident_record_is_not_opened_by_a_holder if {
	asked := object.union(fixtures.input_of(fixtures.clinic_b, "read", ["Observation"], []), {"holder": "Organization/clinic-b"})
	d := data.exchange.decision with input as asked
	not d.allow
}
