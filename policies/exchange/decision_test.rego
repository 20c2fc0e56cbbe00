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
		"type": "permit", "actors": ["Organization/clinic-a"], "actor_kinds": [],
		"purposes": ["TREAT"], "classes": [], "labels": [], "form": "identified",
		"period": no_period, "provisions": [],
	},
}

pay_insurer := {
	"id": "Consent/c2", "version": "3", "status": "active", "period": no_period,
	"provision": {
		"type": "permit", "actors": ["Organization/insurer"], "actor_kinds": [],
		"purposes": ["HPAYMT"], "classes": [], "labels": [], "form": "identified",
		"period": no_period, "provisions": [],
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
		"type": "deny", "actors": [], "actor_kinds": [], "purposes": [],
		"classes": ["Observation"], "labels": [], "form": "identified",
		"period": no_period, "provisions": [],
	}]})})
	d := ask(clinic_a, "read", ["Observation", "Condition"], [except_obs])
	not d.obligations.types.Observation
	d.obligations.types.Condition
}

test_opt_out_consent_vetoes if {
	opt_out := {
		"id": "Consent/c9", "version": "1", "status": "active", "period": no_period,
		"provision": {
			"type": "deny", "actors": [], "actor_kinds": [], "purposes": [], "classes": [],
			"labels": [], "form": "identified", "period": no_period, "provisions": [],
		},
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

# --- consent model: kinds of recipients, sensitive classes, forms, break-glass, proxies ---

any_clinic := object.union(treat_a, {"provision": object.union(treat_a.provision, {
	"actors": [], "actor_kinds": ["clinic"],
})})

test_any_clinic_covers_every_clinic if {
	ask(clinic_b, "read", ["Observation"], [any_clinic]).allow
}

test_another_kind_does_not_match_any_clinic if {
	treat_insurer := object.union(insurer, {"purpose": "TREAT"})
	not ask(treat_insurer, "read", ["Observation"], [any_clinic]).allow
}

psy := {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "PSY"}

test_general_permit_does_not_open_a_sensitive_class if {
	d := ask(clinic_a, "read", ["Condition"], [treat_a])
	psy in d.obligations.withhold_labels
}

test_explicit_provision_opens_a_sensitive_class if {
	mental := object.union(treat_a, {"provision": object.union(treat_a.provision, {"labels": [psy]})})
	d := ask(clinic_a, "read", ["Condition"], [mental])
	not psy in d.obligations.withhold_labels
	count(d.obligations.withhold_labels) > 0
}

test_explicit_label_for_another_clinic_opens_nothing if {
	mental := object.union(treat_a, {"provision": object.union(treat_a.provision, {"labels": [psy]})})
	other_clinics_consent := object.union(mental, {"provision": object.union(mental.provision, {"actors": ["Organization/clinic-b"]})})
	d := ask(clinic_a, "read", ["Condition"], [treat_a, other_clinics_consent])
	psy in d.obligations.withhold_labels
}

test_pseudonymized_only_consent_forces_the_form if {
	pseud := object.union(treat_a, {"provision": object.union(treat_a.provision, {"form": "pseudonymized"})})
	ask(clinic_a, "read", ["Observation"], [pseud]).obligations.form == "pseudonymized"
	ask(clinic_a, "read", ["Observation"], [treat_a]).obligations.form == "identified"
}

etreat := object.union(clinic_b, {"purpose": "ETREAT"})

emergency(who, consents, reason) := d if {
	d := exchange.decision with input as {
		"action": "read", "resource_types": ["Observation"], "requester": who,
		"resident": "p1", "consents": consents, "now": now,
		"context": {"break_glass_reason": reason},
	}
}

test_break_glass_with_a_reason_reads_without_consent if {
	d := emergency(etreat, [], "unconscious on arrival, allergy check")
	d.allow
	"break_glass" in d.reasons
}

test_break_glass_without_a_reason_is_refused if {
	d := emergency(etreat, [], "  ")
	not d.allow
	"break_glass_needs_reason" in d.reasons
	not ask(etreat, "read", ["Observation"], []).allow
}

test_break_glass_respects_an_opt_out if {
	opt_out := {
		"id": "Consent/no-bg", "version": "1", "status": "active", "period": no_period,
		"provision": {
			"type": "deny", "actors": [], "actor_kinds": [], "purposes": ["ETREAT"],
			"classes": [], "labels": [], "form": "identified", "period": no_period,
			"provisions": [],
		},
	}
	d := emergency(etreat, [opt_out], "unconscious on arrival, allergy check")
	not d.allow
	"break_glass_opted_out" in d.reasons
}

test_break_glass_is_not_for_insurers if {
	not emergency(object.union(insurer, {"purpose": "ETREAT"}), [], "a long enough reason here").allow
}

proxy(rights, period) := {
	"kind": "proxy", "proxy": "RelatedPerson/son", "resident": "p1", "scopes": [],
	"purpose": null,
	"delegation": {"active": true, "rights": rights, "period": period},
}

test_proxy_manages_consent_within_delegation if {
	ask(proxy(["consent"], no_period), "create", ["Consent"], []).allow
	"proxy" in ask(proxy(["consent"], no_period), "create", ["Consent"], []).reasons
}

test_proxy_cannot_act_outside_delegation if {
	not ask(proxy(["consent"], no_period), "read", ["Observation"], []).allow
	not ask(proxy(["read"], no_period), "create", ["Consent"], []).allow
	not ask(proxy(["read", "consent"], no_period), "create", ["Observation"], []).allow
	"proxy_outside_delegation" in ask(proxy(["read"], no_period), "create", ["Consent"], []).reasons
}

test_proxy_delegation_expires if {
	expired := {"start": null, "end": now - 1}
	not ask(proxy(["read", "consent"], expired), "read", ["Observation"], []).allow
}

test_proxy_is_confined_to_the_resident if {
	other := object.union(proxy(["read"], no_period), {"resident": "p2"})
	not ask(other, "read", ["Observation"], []).allow
}

test_proxy_reads_what_the_resident_reads if {
	d := ask(proxy(["read"], no_period), "read", ["Observation"], [])
	d.allow
	d.obligations.withhold_labels == []
}

# --- data classes: categories within a type ----------------------------------------------

vitals := {"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}

labs := {"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}

with_provision(c, extra) := object.union(c, {"provision": object.union(c.provision, extra)})

deny_of(categories) := {
	"type": "deny", "actors": [], "actor_kinds": [], "purposes": [], "classes": [],
	"categories": categories, "labels": [], "form": "identified", "period": no_period,
	"provisions": [],
}

test_category_permit_opens_only_that_category if {
	vitals_only := with_provision(treat_a, {"categories": [vitals]})
	d := ask(clinic_a, "search", ["Observation", "Condition"], [vitals_only])
	d.allow
	d.obligations.types.Observation
	not d.obligations.types.Condition
	d.obligations.categories.Observation == {"grants": [{"only": [vitals], "except": []}], "except": []}
}

test_whole_permit_has_no_category_rule if {
	d := ask(clinic_a, "read", ["Observation"], [treat_a])
	d.obligations.categories == {}
}

test_nested_category_deny_excepts_it if {
	no_labs := with_provision(treat_a, {"provisions": [deny_of([labs])]})
	d := ask(clinic_a, "read", ["Observation", "Condition"], [no_labs])
	d.obligations.types.Observation
	d.obligations.categories.Observation == {"grants": [{"only": null, "except": [labs]}], "except": []}
	not d.obligations.categories.Condition
}

test_category_opt_out_applies_to_every_permit if {
	opt_out := {
		"id": "Consent/c9", "version": "1", "status": "active", "period": no_period,
		"provision": deny_of([labs]),
	}
	d := ask(clinic_a, "read", ["Observation"], [treat_a, opt_out])
	d.allow
	d.obligations.categories.Observation.except == [labs]
}

test_unknown_category_system_opens_nothing if {
	odd := with_provision(treat_a, {"categories": [{"system": "urn:unknown", "code": "x"}]})
	not ask(clinic_a, "read", ["Observation"], [odd]).allow
}

test_another_whole_permit_lifts_the_category_limit if {
	vitals_only := with_provision(treat_a, {"categories": [vitals]})
	everything := object.union(treat_a, {"id": "Consent/c3"})
	d := ask(clinic_a, "read", ["Observation"], [vitals_only, everything])
	not d.obligations.categories.Observation
}

# --- profiles -----------------------------------------------------------------------------

hub := {
	"kind": "client", "client_id": "hub", "organization": "Organization/hub",
	"organization_kind": "hub", "purpose": "CAREMGT",
	"scopes": [{"context": "system", "resource_type": "*", "interactions": "rs"}],
}

test_the_hub_gets_the_pseudonymized_profile if {
	care := object.union(treat_a, {"provision": object.union(treat_a.provision, {
		"actors": ["Organization/hub"], "purposes": ["CAREMGT"],
	})})
	d := ask(hub, "search", ["Patient"], [care])
	d.allow
	d.obligations.profile == "pseudonymized"
}

test_the_directory_is_never_pseudonymized if {
	d := exchange.decision with input as {
		"action": "search", "resource_types": ["Organization"], "requester": hub,
		"resident": null, "consents": [], "now": now,
	}
	d.allow
	d.obligations.profile == "identified"
}

test_research_names_its_own_profile if {
	researcher := object.union(hub, {"organization": "Organization/uni", "organization_kind": "research", "purpose": "HRESCH"})
	study := object.union(treat_a, {"provision": object.union(treat_a.provision, {
		"actors": ["Organization/uni"], "purposes": ["HRESCH"], "form": "pseudonymized",
	})})
	d := ask(researcher, "read", ["Observation"], [study])
	d.allow
	d.obligations.profile == "research"
}
