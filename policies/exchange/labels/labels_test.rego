package exchange.labels_test

import rego.v1

import data.exchange.labels

icd(code) := {"system": "http://hl7.org/fhir/sid/icd-10", "code": code}

test_depression_is_mental_health if {
	labels.decision.labels == ["PSY"] with input as {"codes": [icd("F32.9")]}
}

test_alcohol_use_is_substance_use_not_mental_health_only if {
	"SUD" in labels.decision.labels with input as {"codes": [icd("F10.2")]}
}

test_hiv if {
	labels.decision.labels == ["HIV"] with input as {"codes": [icd("B20")]}
}

test_hypertension_is_not_sensitive if {
	labels.decision.labels == [] with input as {"codes": [icd("I10"), {"system": "http://loinc.org", "code": "8480-6"}]}
}

test_same_code_in_another_system_is_not_matched if {
	labels.decision.labels == [] with input as {"codes": [{"system": "urn:other", "code": "F32.9"}]}
}

test_a_directory_record_is_not_labelled if {
	labels.decision.labels == [] with input as {"resource_type": "HealthcareService", "codes": [icd("F32.9")]}
	labels.decision.labels == ["PSY"] with input as {"resource_type": "Condition", "codes": [icd("F32.9")]}
}

test_a_writers_own_security_label_stands if {
	d := labels.decision with input as {"resource_type": "DocumentReference", "codes": [{"system": "http://terminology.hl7.org/codesystem/v3-actcode", "code": "HIV"}]}
	d.labels == ["HIV"]
}

test_icd10_under_another_name_is_labelled if {
	every system in ["http://hl7.org/fhir/sid/icd-10-cm", "http://hl7.org/fhir/sid/icd-10-who", "http://fhir.de/codesystem/bfarm/icd-10-gm", "urn:oid:2.16.840.1.113883.6.90", "urn:oid:2.16.156.10011.2.3.3.11", "http://id.who.int/icd/release/10"] {
		labels.decision.labels == ["PSY"] with input as {"resource_type": "Condition", "codes": [{"system": system, "code": "F32.9"}]}
	}
}

test_icd10_pcs_is_procedures_not_diagnoses if {
	labels.decision.labels == [] with input as {"resource_type": "Procedure", "codes": [{"system": "http://www.cms.gov/medicare/coding/icd10-pcs", "code": "F32Z0ZZ"}]}
}

test_a_dashed_or_undotted_icd10_code_is_the_code if {
	labels.decision.labels == ["PSY"] with input as {"codes": [icd("F-32.9")]}
	labels.decision.labels == ["PSY"] with input as {"codes": [icd("F329")]}
}

test_icd9_and_icd11_and_snomed_are_read if {
	labels.decision.labels == ["HIV"] with input as {"codes": [{"system": "http://hl7.org/fhir/sid/icd-9-cm", "code": "042"}]}
	labels.decision.labels == ["PSY"] with input as {"codes": [{"system": "urn:oid:2.16.840.1.113883.6.103", "code": "296.20"}]}
	labels.decision.labels == ["PSY"] with input as {"codes": [{"system": "http://id.who.int/icd/release/11/mms", "code": "6A70"}]}
	labels.decision.labels == ["HIV"] with input as {"codes": [{"system": "http://id.who.int/icd/release/11/2024-01/mms", "code": "1C62.Z"}]}
	labels.decision.labels == ["PSY"] with input as {"codes": [{"system": "http://snomed.info/sct", "code": "35489007"}]}
	labels.decision.labels == ["HIV"] with input as {"codes": [{"system": "urn:oid:2.16.840.1.113883.6.96", "code": "86406008"}]}
	labels.decision.labels == ["HIV"] with input as {"codes": [{"system": "urn:oid:2.16.840.1.113883.6.1", "code": "7917-8"}]}
}

test_a_code_without_a_system_is_read_as_any_system_it_looks_like if {
	labels.decision.labels == ["PSY"] with input as {"codes": [{"system": "", "code": "F32.9"}]}
	labels.decision.labels == ["HIV"] with input as {"codes": [{"system": "", "code": "86406008"}]}
	labels.decision.labels == [] with input as {"codes": [{"system": "", "code": "OTHER"}]}
	labels.decision.labels == [] with input as {"codes": [{"system": "", "code": "I10"}]}
}

test_a_snomed_expression_is_read_as_its_concepts if {
	d := labels.decision with input as {"codes": [{"system": "http://snomed.info/sct", "code": "64572001:246075003=86406008"}]}
	d.labels == ["HIV"]
	d.unreadable == []
	labels.decision.unreadable == [] with input as {"codes": [{"system": "http://snomed.info/sct", "code": "71341001|FRACTURE OF BONE|:272741003=7771000"}]}
}

test_a_code_no_listed_system_has_is_unreadable if {
	labels.decision.unreadable == ["http://hl7.org/fhir/sid/icd-10"] with input as {"codes": [icd("В20")]}
	labels.decision.unreadable == [] with input as {"codes": [icd("A17.0+"), {"system": "urn:local", "code": "高血压"}]}
}

test_no_listed_prefix_is_longer_than_the_lookup_goes if {
	every prefixes in labels.table {
		every prefix, _ in prefixes {
			count(prefix) <= labels.longest_prefix
		}
	}
}

test_a_listed_loinc_code_is_matched_whole if {
	labels.decision.labels == ["PSY"] with input as {"codes": [{"system": "http://loinc.org", "code": "44249-1"}]}
}

test_every_alias_names_a_listed_system if {
	every _, system in labels.aliases {
		labels.table[system]
	}
}
