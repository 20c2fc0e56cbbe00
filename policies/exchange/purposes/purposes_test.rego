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
