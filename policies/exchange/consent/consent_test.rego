package exchange.consent_test

import rego.v1

import data.exchange.consent
import data.exchange.fixtures_test as fixtures

test_consented_clinic_reads if {
	d := fixtures.ask(fixtures.clinic_a, "read", ["Observation"], [fixtures.treat_a])
	d.allow
	d.consents == ["Consent/c1/_history/1"]
	d.obligations.types.Observation == ["*"]
	d.obligations.form == "identified"
	"consent_permit" in d.reasons
}

test_revoked_consent_denied if {
	revoked := object.union(fixtures.treat_a, {"status": "inactive"})
	d := fixtures.ask(fixtures.clinic_a, "read", ["Observation"], [revoked])
	not d.allow
}

test_expired_consent_denied if {
	expired := object.union(fixtures.treat_a, {"period": {"start": null, "end": fixtures.now - 1}})
	not fixtures.ask(fixtures.clinic_a, "read", ["Observation"], [expired]).allow
}

test_not_yet_valid_consent_denied if {
	later := object.union(fixtures.treat_a, {"period": {"start": fixtures.now + 1, "end": null}})
	not fixtures.ask(fixtures.clinic_a, "read", ["Observation"], [later]).allow
}

test_wrong_purpose_denied if {
	payment_clinic := object.union(fixtures.clinic_a, {"purpose": "HPAYMT"})
	d := fixtures.ask(payment_clinic, "read", ["Observation"], [fixtures.treat_a])
	not d.allow
}

test_class_limited_consent if {
	conditions_only := fixtures.with_provision(fixtures.treat_a, {"classes": ["Condition"]})
	d := fixtures.ask(fixtures.clinic_a, "search", ["Condition", "Observation"], [conditions_only])
	d.obligations.types.Condition
	not d.obligations.types.Observation
}

test_nested_deny_wins if {
	except_obs := fixtures.with_provision(fixtures.treat_a, {"provisions": [{
		"type": "deny", "actors": [], "actor_kinds": [], "purposes": [],
		"classes": ["Observation"], "labels": [], "form": "identified",
		"period": fixtures.no_period, "provisions": [],
	}]})
	d := fixtures.ask(fixtures.clinic_a, "read", ["Observation", "Condition"], [except_obs])
	not d.obligations.types.Observation
	d.obligations.types.Condition
}

test_opt_out_consent_vetoes if {
	not fixtures.ask(fixtures.clinic_a, "read", ["Observation"], [fixtures.treat_a, fixtures.opt_out]).allow
}

test_clinic_cannot_write_consents if {
	d := fixtures.ask(fixtures.clinic_a, "update", ["Consent"], [fixtures.treat_a])
	not d.allow
	"resident_managed" in d.reasons
}

test_clinic_writes_consented_record if {
	fixtures.ask(fixtures.clinic_a, "create", ["Observation"], [fixtures.treat_a]).allow
	not fixtures.ask(fixtures.clinic_b, "create", ["Observation"], [fixtures.treat_a]).allow
}

any_clinic := fixtures.with_provision(fixtures.treat_a, {"actors": [], "actor_kinds": ["clinic"]})

test_any_clinic_covers_every_clinic if {
	fixtures.ask(fixtures.clinic_b, "read", ["Observation"], [any_clinic]).allow
}

test_another_kind_does_not_match_any_clinic if {
	treat_insurer := object.union(fixtures.insurer, {"purpose": "TREAT"})
	not fixtures.ask(treat_insurer, "read", ["Observation"], [any_clinic]).allow
}

test_a_permit_needs_its_actor_its_purpose_and_its_period if {
	by_a := fixtures.input_of(fixtures.clinic_a, "read", [], [])
	by_b := fixtures.input_of(fixtures.clinic_b, "read", [], [])
	in_emergency := fixtures.input_of(fixtures.etreat, "read", [], [])
	ended := fixtures.with_provision(fixtures.treat_a, {"period": {"start": null, "end": fixtures.now}})
	consent.permits(fixtures.treat_a, "Observation") with input as by_a
	not consent.permits(fixtures.treat_a, "Observation") with input as by_b
	not consent.permits(fixtures.treat_a, "Observation") with input as in_emergency
	not consent.permits(ended, "Observation") with input as by_a
}

test_only_the_consents_relied_on_are_named if {
	asked := fixtures.input_of(fixtures.clinic_a, "read", ["Observation"], [fixtures.treat_a, fixtures.pay_insurer])
	consent.relied_on == {"Consent/c1/_history/1"} with input as asked
}
