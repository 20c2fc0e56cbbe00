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

# Other names of the same code system (ICD-10-CM, the OIDs of ICD-10 and the Chinese national
# edition share its chapters), each written as exchange/decisions/codes.py spells systems.
aliases := data.exchange.static.code_system_aliases

# METADATA
# title: decision
# entrypoint: true
decision := {"labels": sort([l | some l in found]), "unreadable": sort([c | some c in unreadable])}

# The codes arrive spelled alike (exchange/decisions/codes.py): systems in lower case,
# without https, www or a trailing slash; codes in upper case, without blanks or invisible
# characters, with lookalike letters read as the Latin ones. Which names are one system,
# and which codes of it are sensitive, is decided here.

# A directory record (a service, a practitioner, a medication) names no resident, so it
# tells nothing sensitive about anyone: a psychotherapy service labelled PSY would be
# withheld from every reader, for no resident's sake.
found contains label if {
	not input.resource_type in data.exchange.static.directory_types
	some coding in input.codes
	some system in systems(coding)
	prefixes := table[system]
	some code in forms(coding.code)

	# Each of the code's own prefixes is looked up, so that the cost is the code's length,
	# not the length of the lists: a resource with many codes stays within the engine's
	# instruction budget.
	some n in numbers.range(1, min([count(code), longest_prefix]))
	some label in prefixes[substring(code, 0, n)]
}

# No listed prefix is longer than this (a test holds the lists to it), so no longer prefix
# of a code needs a look. A constant: computing it from the lists doubles each decision.
longest_prefix := 20

# The listed systems a coding's system names: itself, another name of it, or a name that
# follows one of its patterns (ICD-10-GM, ICD-10-WHO, ...). ICD-10-PCS names procedures,
# whose codes share letters with diagnoses: its pattern leaves it out.
systems(coding) := {s |
	some s in {coding.system, object.get(aliases, coding.system, coding.system)}
	table[s]
} | {rule.system |
	some rule in data.exchange.static.code_system_patterns
	regex.match(rule.pattern, coding.system)
	not regex.match(rule.except, coding.system)
} if {
	coding.system != ""
}

# A code without a system is read as a code of every listed system it looks like: F32.9 is
# read as ICD-10, and a reader who sees it reads depression.
systems(coding) := {system |
	some system, shape in data.exchange.static.code_shapes
	some code in forms(coding.code)
	regex.match(shape, code)
} if {
	coding.system == ""
}

# F-32.9 and F32.9 are one code; F329 is how a claim writes F32.9 (its prefixes match). A
# SNOMED CT expression (64572001:246075003=86406008, a disease caused by HIV) is read as
# each concept it names.
forms(code) := {code, replace(code, "-", "")} | {c | some c in regex.find_n(`[0-9]{6,18}`, code, -1)}

# A code of a listed system written in characters no code of it has: its sensitivity
# cannot be read, so it is not stored (the exchange refuses it with 400).
unreadable contains coding.system if {
	some coding in input.codes
	coding.system != ""
	count(systems(coding)) > 0
	some system in systems(coding)
	not readable(system, coding.code)
}

readable(system, code) if {
	not data.exchange.static.readable_codes[system]
	regex.match(data.exchange.static.readable_code, code)
}

# A SNOMED CT expression may carry a concept's term between bars, in any words; SNOMED RT's
# older codes (T-15460) have letters.
readable(system, code) if {
	pattern := data.exchange.static.readable_codes[system]
	regex.match(pattern, regex.replace(code, `\|[^|]*\|`, ""))
}

# A label the writer put on the resource itself (a DocumentReference's securityLabel)
# stands as a label: the policies withhold it like one they found.
found contains coding.code if {
	not input.resource_type in data.exchange.static.directory_types
	some coding in input.codes
	coding.system == lower(data.exchange.static.label_system)
	some listed in data.exchange.static.sensitive_labels
	listed.code == coding.code
}
