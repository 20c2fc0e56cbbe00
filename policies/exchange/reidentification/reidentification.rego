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
#   act, open only to oversight organizations acting for compliance; it is audited.
types contains "Patient" if {
	data.exchange.request.client
	input.action == "reidentify"
	data.exchange.oversight.acting
}

# METADATA
# title: reidentification
# description: A compliance office re-identified a pseudonymized record.
# custom:
#   reason: reidentification
#   en: A compliance office re-identified a pseudonymized record.
#   zh: 合规部门对一条假名化记录进行了重新识别。
reasons contains "reidentification" if count(types) > 0
