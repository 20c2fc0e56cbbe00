package exchange.purposes_test

import rego.v1

import data.exchange.fixtures_test as fixtures
import data.exchange.purposes

test_payment_purpose_is_minimized if {
	d := fixtures.ask(fixtures.insurer, "read", ["Claim", "Observation", "Patient"], [fixtures.pay_insurer])
	d.allow
	d.obligations.types.Claim == ["*"]
	not d.obligations.types.Observation
	"birthDate" in d.obligations.types.Patient
	not "telecom" in d.obligations.types.Patient
	"purpose_excludes_type" in d.reasons
}

test_the_resident_and_a_reading_proxy_keep_every_field if {
	by_resident := fixtures.input_of(fixtures.me, "read", ["Patient"], [])
	by_proxy := fixtures.input_of(fixtures.proxy(["read"], fixtures.no_period), "read", ["Patient"], [])
	purposes.fields("Patient") == ["*"] with input as by_resident
	purposes.fields("Patient") == ["*"] with input as by_proxy
}

test_a_client_keeps_the_fields_its_purpose_lists if {
	asked := fixtures.input_of(fixtures.insurer, "read", ["Patient"], [])
	fields := purposes.fields("Patient") with input as asked
	"birthDate" in fields
	not "telecom" in fields
}

test_unknown_purpose_refused if {
	bogus := object.union(fixtures.clinic_a, {"purpose": "BOGUS"})
	d := fixtures.ask(bogus, "read", ["Observation"], [fixtures.treat_a])
	not d.allow
	"unknown_purpose" in d.reasons
}

test_purpose_forbids_action if {
	emergency := object.union(fixtures.clinic_a, {"purpose": "ETREAT"})
	d := fixtures.ask(emergency, "create", ["Observation"], [fixtures.treat_a])
	not d.allow
	"purpose_forbids_action" in d.reasons
}

billing := object.union(fixtures.clinic_a, {"purpose": "HPAYMT"})

bills_a := object.union(fixtures.pay_insurer, {"provision": object.union(
	fixtures.pay_insurer.provision,
	{"actors": ["Organization/clinic-a"]},
)})

test_a_billing_clinic_writes_the_claims_it_sees_whole if {
	d := fixtures.ask(billing, "create", ["Claim"], [bills_a])
	d.allow
	u := fixtures.ask(billing, "update", ["Claim"], [bills_a])
	u.allow
}

test_payment_writes_nothing_it_is_shown_in_part if {
	d := fixtures.ask(billing, "create", ["Condition"], [bills_a])
	not d.allow
	"purpose_sees_part" in d.reasons
	r := fixtures.ask(billing, "read", ["Condition"], [bills_a])
	r.allow
}

test_the_insurers_read_only_scopes_still_write_nothing if {
	d := fixtures.ask(fixtures.insurer, "create", ["Claim"], [fixtures.pay_insurer])
	not d.allow
	"scope_missing" in d.reasons
}

# The hub derives care facts from Observations and Conditions; it never receives them.
care_consent := fixtures.with_provision(fixtures.treat_a, {"actors": ["Organization/hub"], "purposes": ["CAREMGT"]})

test_the_hub_never_receives_observations_as_they_are if {
	d := fixtures.ask(fixtures.hub, "search", ["Observation"], [care_consent])
	not d.allow
	"purpose_gets_derived_facts" in d.reasons
	read := fixtures.ask(fixtures.hub, "read", ["Condition"], [care_consent])
	not read.allow
}

test_the_hub_derives_from_what_the_resident_consented_to if {
	d := fixtures.ask(fixtures.hub, "derive", ["Condition", "Observation"], [care_consent])
	d.allow
	d.obligations.types.Observation
	d.obligations.types.Condition
	d.obligations.profile == "care-needs"
}

test_deriving_needs_a_consent if {
	not fixtures.ask(fixtures.hub, "derive", ["Observation"], []).allow
}

test_deriving_opens_no_type_that_is_disclosed_whole if {
	d := fixtures.ask(fixtures.hub, "derive", ["Patient", "Observation"], [care_consent])
	not d.obligations.types.Patient
}

test_a_clinic_derives_nothing if {
	not fixtures.ask(fixtures.clinic_a, "derive", ["Observation"], [fixtures.treat_a]).allow
}
