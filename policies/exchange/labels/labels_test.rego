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
	d := labels.decision with input as {"resource_type": "DocumentReference", "codes": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "HIV"}]}
	d.labels == ["HIV"]
}

test_icd10_under_another_name_or_case_is_labelled if {
	d := labels.decision with input as {"resource_type": "Condition", "codes": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "f32.9"}]}
	d.labels == ["PSY"]
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
