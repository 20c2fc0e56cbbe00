package exchange.registration_test

import rego.v1

import data.exchange.fixtures_test as fixtures
import data.exchange.registration

test_clinic_registers_new_resident if {
	d := fixtures.ask(fixtures.clinic_b, "create", ["Patient"], [])
	d.allow
	"registration" in d.reasons
}

test_insurer_cannot_register if {
	not fixtures.ask(fixtures.insurer, "create", ["Patient"], []).allow
}

test_a_resident_with_consents_is_not_registered_again if {
	asked := fixtures.input_of(fixtures.clinic_b, "create", ["Patient"], [fixtures.treat_a])
	registration.types == set() with input as asked
}
