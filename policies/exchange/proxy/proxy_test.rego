package exchange.proxy_test

import rego.v1

import data.exchange.fixtures_test as fixtures
import data.exchange.proxy

test_proxy_manages_consent_within_delegation if {
	fixtures.ask(fixtures.proxy(["consent"], fixtures.no_period), "create", ["Consent"], []).allow
	"proxy" in fixtures.ask(fixtures.proxy(["consent"], fixtures.no_period), "create", ["Consent"], []).reasons
}

test_proxy_cannot_act_outside_delegation if {
	not fixtures.ask(fixtures.proxy(["consent"], fixtures.no_period), "read", ["Observation"], []).allow
	not fixtures.ask(fixtures.proxy(["read"], fixtures.no_period), "create", ["Consent"], []).allow
	not fixtures.ask(fixtures.proxy(["read", "consent"], fixtures.no_period), "create", ["Observation"], []).allow
	"proxy_outside_delegation" in fixtures.ask(fixtures.proxy(["read"], fixtures.no_period), "create", ["Consent"], []).reasons
}

test_proxy_delegation_expires if {
	expired := {"start": null, "end": fixtures.now - 1}
	not fixtures.ask(fixtures.proxy(["read", "consent"], expired), "read", ["Observation"], []).allow
}

test_proxy_is_confined_to_the_resident if {
	other := object.union(fixtures.proxy(["read"], fixtures.no_period), {"resident": "p2"})
	not fixtures.ask(other, "read", ["Observation"], []).allow
}

test_proxy_reads_what_the_resident_reads if {
	d := fixtures.ask(fixtures.proxy(["read"], fixtures.no_period), "read", ["Observation"], [])
	d.allow
	d.obligations.withhold_labels == []
}

test_a_suspended_delegation_gives_nothing if {
	suspended := object.union(fixtures.proxy(["read"], fixtures.no_period), {"delegation": {
		"active": false, "rights": ["read"], "period": fixtures.no_period,
	}})
	asked := fixtures.input_of(suspended, "read", ["Observation"], [])
	proxy.types == set() with input as asked
}

test_a_consent_right_covers_only_what_the_resident_may_write if {
	proxy.may("consent", "Consent")
	not proxy.may("consent", "Observation")
	proxy.may("read", "Observation")
}

test_a_proxy_writing_is_not_reading if {
	asked := fixtures.input_of(fixtures.proxy(["consent"], fixtures.no_period), "create", ["Consent"], [])
	not proxy.reading with input as asked
}
