# METADATA
# title: Re-identification
# description: >-
#   Turning a pseudonymized disclosure's token back into a resident (action reidentify).
package exchange.reidentification

import rego.v1

# METADATA
# title: reidentification
# description: >-
#   Turning a pseudonymized disclosure's token back into a resident is an exchange-side
#   act, open only to oversight organizations acting for compliance, with a token whose
#   scopes cover reading the resident (system/Patient.r): like every other rule, a
#   registration opens nothing its token was not given. It is audited.
types contains t if {
	data.exchange.request.client
	input.action == "reidentify"
	data.exchange.oversight.acting
	some t in data.exchange.request.requested
	t == "Patient"
	data.exchange.request.scope_allows(t)
}

# METADATA
# title: reidentification
# description: A compliance office re-identified a pseudonymized record.
# custom:
#   reason: reidentification
#   en: A compliance office re-identified a pseudonymized record.
#   zh: 合规部门对一条假名化记录进行了重新识别。
reasons contains "reidentification" if count(types) > 0
