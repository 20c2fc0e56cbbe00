package exchange_test

import rego.v1

import data.exchange

now := 1800000000

clinic_a := {
	"kind": "client", "client_id": "clinic-a", "organization": "Organization/clinic-a",
	"organization_kind": "clinic", "purpose": "TREAT",
	"scopes": [{"context": "system", "resource_type": "*", "interactions": "cruds"}],
}

clinic_b := object.union(clinic_a, {"client_id": "clinic-b", "organization": "Organization/clinic-b"})

insurer := {
	"kind": "client", "client_id": "insurer", "organization": "Organization/insurer",
	"organization_kind": "insurer", "purpose": "HPAYMT",
	"scopes": [{"context": "system", "resource_type": "*", "interactions": "rs"}],
}

no_period := {"start": null, "end": null}

treat_a := {
	"id": "Consent/c1", "version": "1", "status": "active", "period": no_period,
	"provision": {
		"type": "permit", "actors": ["Organization/clinic-a"], "purposes": ["TREAT"],
		"classes": [], "period": no_period, "provisions": [],
	},
}

pay_insurer := {
	"id": "Consent/c2", "version": "3", "status": "active", "period": no_period,
	"provision": {
		"type": "permit", "actors": ["Organization/insurer"], "purposes": ["HPAYMT"],
		"classes": [], "period": no_period, "provisions": [],
	},
}

ask(who, action, types, consents) := d if {
	d := exchange.decision with input as {
		"action": action, "resource_types": types, "requester": who,
		"resident": "p1", "consents": consents, "now": now,
	}
}

test_consented_clinic_reads if {
	d := ask(clinic_a, "read", ["Observation"], [treat_a])
	d.allow
	d.consents == ["Consent/c1/_history/1"]
	d.obligations.types.Observation == ["*"]
	d.obligations.form == "identified"
	"consent_permit" in d.reasons
}

test_other_clinic_denied if {
	d := ask(clinic_b, "read", ["Observation"], [treat_a])
	not d.allow
	"not_consented" in d.reasons
	d.consents == []
}

test_no_consent_denied if {
	d := ask(clinic_a, "search", ["Observation"], [])
	not d.allow
	"no_active_consent" in d.reasons
}

test_revoked_consent_denied if {
	revoked := object.union(treat_a, {"status": "inactive"})
	d := ask(clinic_a, "read", ["Observation"], [revoked])
	not d.allow
}

test_expired_consent_denied if {
	expired := object.union(treat_a, {"period": {"start": null, "end": now - 1}})
	not ask(clinic_a, "read", ["Observation"], [expired]).allow
}

test_not_yet_valid_consent_denied if {
	later := object.union(treat_a, {"period": {"start": now + 1, "end": null}})
	not ask(clinic_a, "read", ["Observation"], [later]).allow
}

test_wrong_purpose_denied if {
	payment_clinic := object.union(clinic_a, {"purpose": "HPAYMT"})
	d := ask(payment_clinic, "read", ["Observation"], [treat_a])
	not d.allow
}

test_payment_purpose_is_minimized if {
	d := ask(insurer, "read", ["Claim", "Observation", "Patient"], [pay_insurer])
	d.allow
	d.obligations.types.Claim == ["*"]
	not d.obligations.types.Observation
	"birthDate" in d.obligations.types.Patient
	not "telecom" in d.obligations.types.Patient
	"purpose_excludes_type" in d.reasons
}

test_scope_limits_types if {
	narrow := object.union(clinic_a, {"scopes": [{"context": "system", "resource_type": "Patient", "interactions": "rs"}]})
	d := ask(narrow, "read", ["Patient", "Observation"], [treat_a])
	d.allow
	d.obligations.types.Patient
	not d.obligations.types.Observation
	"scope_missing" in d.reasons
}

test_class_limited_consent if {
	conditions_only := object.union(treat_a, {"provision": object.union(treat_a.provision, {"classes": ["Condition"]})})
	d := ask(clinic_a, "search", ["Condition", "Observation"], [conditions_only])
	d.obligations.types.Condition
	not d.obligations.types.Observation
}

test_nested_deny_wins if {
	except_obs := object.union(treat_a, {"provision": object.union(treat_a.provision, {"provisions": [{
		"type": "deny", "actors": [], "purposes": [], "classes": ["Observation"],
		"period": no_period, "provisions": [],
	}]})})
	d := ask(clinic_a, "read", ["Observation", "Condition"], [except_obs])
	not d.obligations.types.Observation
	d.obligations.types.Condition
}

test_opt_out_consent_vetoes if {
	opt_out := {
		"id": "Consent/c9", "version": "1", "status": "active", "period": no_period,
		"provision": {"type": "deny", "actors": [], "purposes": [], "classes": [], "period": no_period, "provisions": []},
	}
	not ask(clinic_a, "read", ["Observation"], [treat_a, opt_out]).allow
}

test_sensitive_labels_withheld_from_clients if {
	d := ask(clinic_a, "read", ["Observation"], [treat_a])
	count(d.obligations.withhold_labels) > 0
}

test_resident_reads_own_record_without_consent if {
	me := {"kind": "resident", "resident": "p1", "scopes": []}
	d := ask(me, "read", ["Observation"], [])
	d.allow
	d.obligations.withhold_labels == []
	"resident_self" in d.reasons
}

test_resident_cannot_read_another if {
	other := {"kind": "resident", "resident": "p2", "scopes": []}
	d := ask(other, "read", ["Observation"], [])
	not d.allow
	"other_resident" in d.reasons
}

test_resident_writes_only_consents if {
	me := {"kind": "resident", "resident": "p1", "scopes": []}
	ask(me, "create", ["Consent"], []).allow
	not ask(me, "create", ["Observation"], []).allow
}

test_clinic_cannot_write_consents if {
	d := ask(clinic_a, "update", ["Consent"], [treat_a])
	not d.allow
	"resident_managed" in d.reasons
}

test_clinic_writes_consented_record if {
	ask(clinic_a, "create", ["Observation"], [treat_a]).allow
	not ask(clinic_b, "create", ["Observation"], [treat_a]).allow
}

test_clinic_registers_new_resident if {
	d := ask(clinic_b, "create", ["Patient"], [])
	d.allow
	"registration" in d.reasons
}

test_insurer_cannot_register if {
	not ask(insurer, "create", ["Patient"], []).allow
}

test_directory_readable_by_clients if {
	d := exchange.decision with input as {
		"action": "search", "resource_types": ["Organization"], "requester": clinic_b,
		"resident": null, "consents": [], "now": now,
	}
	d.allow
}

test_unknown_requester_denied if {
	d := ask({"kind": "robot", "scopes": []}, "read", ["Observation"], [treat_a])
	not d.allow
}

compliance := {
	"kind": "client", "client_id": "office", "organization": "Organization/office",
	"organization_kind": "compliance", "purpose": "HCOMPL",
	"scopes": [{"context": "system", "resource_type": "AuditEvent", "interactions": "rs"}],
}

audit_ask(who, resident, consents) := d if {
	d := exchange.decision with input as {
		"action": "search", "resource_types": ["AuditEvent"], "requester": who,
		"resident": resident, "consents": consents, "now": now,
	}
}

test_compliance_officer_reads_the_audit_trail if {
	d := audit_ask(compliance, null, [])
	d.allow
	"audit_oversight" in d.reasons
}

test_clinic_cannot_read_the_audit_trail_even_with_consent if {
	wide := object.union(clinic_a, {"scopes": [{"context": "system", "resource_type": "*", "interactions": "rs"}]})
	not audit_ask(wide, null, []).allow
	not audit_ask(wide, "p1", [treat_a]).allow
}

test_compliance_needs_its_purpose if {
	not audit_ask(object.union(compliance, {"purpose": "TREAT"}), null, []).allow
}

test_resident_reads_own_access_history if {
	me := {"kind": "resident", "resident": "p1", "scopes": []}
	audit_ask(me, "p1", []).allow
	not audit_ask(me, "p2", []).allow
}
