# METADATA
# title: Sensitivity labels on the way in
# description: >-
#   Which FHIR security labels a resource gets when it is written, from the code lists in
#   data.exchange.static.sensitive_codes. Input: {"codes": [{"system", "code"}]}, every
#   coding the resource carries in its clinical elements.
package exchange.labels

import rego.v1

lists := data.exchange.static.sensitive_codes

# METADATA
# title: decision
# entrypoint: true
decision := {"labels": sort([l | some l in found])}

found contains entry.label if {
	some coding in input.codes
	some entry in lists
	coding.system == entry.system
	some prefix in entry.prefixes
	startswith(coding.code, prefix)
}
