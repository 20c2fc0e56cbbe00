package exchange.labels.dependents_test

import rego.v1

import data.exchange.labels.dependents

psy := {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "PSY"}

hiv := {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "HIV"}

restricted := {"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}

pointer(path, target_type, labels) := {"path": path, "target_type": target_type, "labels": labels}

reaching(rtype, pointers) := d if {
	asked := {"resource_type": rtype, "pointers": pointers}
	d := dependents.decision with input as asked
}

test_an_explanation_of_benefit_is_withheld_with_its_claim if {
	reaching("ExplanationOfBenefit", [pointer("claim", "Claim", [psy])]).labels == [psy]
}

test_a_provenance_is_withheld_with_its_target if {
	reaching("Provenance", [pointer("target", "Condition", [psy])]).labels == [psy]
	reaching("Provenance", [pointer("entity.what", "DocumentReference", [hiv])]).labels == [hiv]
}

test_a_document_reference_is_withheld_with_its_context if {
	reaching("DocumentReference", [pointer("context.encounter", "Encounter", [psy])]).labels == [psy]
	reaching("DocumentReference", [pointer("context.related", "Condition", [hiv])]).labels == [hiv]
	reaching("DocumentReference", [pointer("relatesTo.target", "DocumentReference", [psy])]).labels == [psy]
}

test_a_condition_is_withheld_with_its_evidence if {
	reaching("Condition", [pointer("evidence.detail", "Observation", [psy])]).labels == [psy]
}

test_the_labels_of_every_pointer_reach_once_and_sorted if {
	d := reaching("ExplanationOfBenefit", [
		pointer("claim", "Claim", [psy, hiv]),
		pointer("item.encounter", "Encounter", [psy]),
	])
	d.labels == [hiv, psy]
}

listed(rtype, path) if {
	some rule in dependents.rules.pointers
	rule.type == rtype
	rule.path == path
}

test_a_pointer_nobody_listed_withholds if {
	not listed("Observation", "derivedFrom")
	reaching("Observation", [pointer("derivedFrom", "Observation", [psy])]).labels == [psy]
	dependents.rules.default == "withhold"
}

test_only_the_labels_the_policies_withhold_travel if {
	integrity := {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED"}
	reaching("Provenance", [pointer("target", "Claim", [integrity])]).labels == []
	reaching("Provenance", [pointer("target", "Claim", [integrity, restricted])]).labels == [restricted]
}

test_the_resident_is_never_withheld_for_what_their_records_say if {
	reaching("Patient", [pointer("link.other", "RelatedPerson", [psy])]).labels == []
}

test_a_pointer_at_the_resident_passes_nothing if {
	reaching("Provenance", [pointer("target", "Patient", [restricted])]).labels == []
	reaching("Observation", [pointer("subject", "Patient", [psy])]).labels == []
}

test_a_record_that_points_at_nothing_labelled_takes_nothing if {
	reaching("ExplanationOfBenefit", []).labels == []
}

test_each_pointer_rule_is_listed_once_with_a_known_reach if {
	every rule in dependents.rules.pointers {
		rule.reach in {"withhold", "none"}
		count([r | some r in dependents.rules.pointers; r.type == rule.type; r.path == rule.path]) == 1
	}
	dependents.rules.default in {"withhold", "none"}
}
