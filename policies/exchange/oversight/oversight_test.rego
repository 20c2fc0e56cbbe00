package exchange.oversight_test

import rego.v1

import data.exchange.fixtures_test as fixtures
import data.exchange.oversight

test_compliance_officer_reads_the_audit_trail if {
	d := fixtures.audit_ask(fixtures.compliance, null, [])
	d.allow
	"audit_oversight" in d.reasons
}

test_clinic_cannot_read_the_audit_trail_even_with_consent if {
	wide := object.union(fixtures.clinic_a, {"scopes": [{"context": "system", "resource_type": "*", "interactions": "rs"}]})
	not fixtures.audit_ask(wide, null, []).allow
	not fixtures.audit_ask(wide, "p1", [fixtures.treat_a]).allow
}

test_compliance_needs_its_purpose if {
	not fixtures.audit_ask(object.union(fixtures.compliance, {"purpose": "TREAT"}), null, []).allow
}

test_resident_reads_own_access_history if {
	fixtures.audit_ask(fixtures.me, "p1", []).allow
	not fixtures.audit_ask(fixtures.me, "p2", []).allow
}

test_oversight_is_read_only if {
	asked := fixtures.input_of(fixtures.compliance, "update", ["AuditEvent"], [])
	oversight.types == set() with input as asked
}
