# METADATA
# title: Sensitivity labels on the way in
# description: >-
#   Which FHIR security labels a resource gets when it is written, from the code lists in
#   data.exchange.static.sensitive_codes. Input: {"resource_type", "codes": [{"system",
#   "code"}]}, every coding the resource carries in its clinical elements.
package exchange.labels

import rego.v1

lists := data.exchange.static.sensitive_codes

# METADATA
# title: decision
# entrypoint: true
decision := {"labels": sort([l | some l in found])}

# The lists by code system, so that each code is compared with its own system's prefixes
# only: a resource with many codes stays within the engine's instruction budget.
by_system[system] := [entry | some entry in lists; entry.system == system] if {
	some listed in lists
	system := listed.system
}

# A directory record (a service, a practitioner, a medication) names no resident, so it
# tells nothing sensitive about anyone: a psychotherapy service labelled PSY would be
# withheld from every reader, for no resident's sake.
found contains entry.label if {
	not input.resource_type in data.exchange.static.directory_types
	some coding in input.codes
	some entry in by_system[coding.system]
	some prefix in entry.prefixes
	startswith(upper(coding.code), prefix)
}

# A label the writer put on the resource itself (a DocumentReference's securityLabel)
# stands as a label: the policies withhold it like one they found.
found contains coding.code if {
	not input.resource_type in data.exchange.static.directory_types
	some coding in input.codes
	coding.system == data.exchange.static.label_system
	some listed in data.exchange.static.sensitive_labels
	listed.code == coding.code
}
