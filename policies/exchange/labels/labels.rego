# METADATA
# title: Sensitivity labels on the way in
# description: >-
#   Which FHIR security labels a resource gets when it is written, from the code lists in
#   data.exchange.static.sensitive_codes. Input: {"resource_type", "codes": [{"system",
#   "code"}]}, every coding the resource carries in its clinical elements.
package exchange.labels

import rego.v1

# Sensitive codes by code system, then by code prefix: {system: {prefix: [label]}}.
table := data.exchange.static.sensitive_codes

# Other names of the same code system (ICD-10-CM and the OIDs of ICD-10 share its chapters).
aliases := data.exchange.static.code_system_aliases

# METADATA
# title: decision
# entrypoint: true
decision := {"labels": sort([l | some l in found])}

# A directory record (a service, a practitioner, a medication) names no resident, so it
# tells nothing sensitive about anyone: a psychotherapy service labelled PSY would be
# withheld from every reader, for no resident's sake.
found contains label if {
	not input.resource_type in data.exchange.static.directory_types
	some coding in input.codes
	prefixes := table[object.get(aliases, coding.system, coding.system)]
	code := upper(coding.code)

	# Each of the code's own prefixes is looked up, so that the cost is the code's length,
	# not the length of the lists: a resource with many codes stays within the engine's
	# instruction budget.
	some n in numbers.range(1, min([count(code), longest_prefix]))
	some label in prefixes[substring(code, 0, n)]
}

# No listed prefix is longer than this (a test holds the lists to it), so no longer prefix
# of a code needs a look. A constant: computing it from the lists doubles each decision.
longest_prefix := 20

# A label the writer put on the resource itself (a DocumentReference's securityLabel)
# stands as a label: the policies withhold it like one they found.
found contains coding.code if {
	not input.resource_type in data.exchange.static.directory_types
	some coding in input.codes
	coding.system == data.exchange.static.label_system
	some listed in data.exchange.static.sensitive_labels
	listed.code == coding.code
}
